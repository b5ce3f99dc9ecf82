//! The `registry!` macro: from one line per family (`module::Module(Config)`) it declares the
//! family's module and generates [`MixerConfig`](super::MixerConfig),
//! [`Mixer`](super::Mixer), [`MixerState`](super::MixerState), their dispatch, JSON
//! (de)serialisation tagged by [`MixerSpec::NAME`](super::MixerSpec::NAME), and
//! [`MIXER_NAMES`](super::MIXER_NAMES).

macro_rules! registry {
    ($($module:ident :: $Variant:ident ( $Config:ident )),+ $(,)?) => {
        $(
            pub mod $module;
            pub use $module::{$Config, $Variant};
        )+

        /// Every registered family's name, in registry order.
        pub const MIXER_NAMES: &[&str] = &[$(<$Config as MixerSpec>::NAME),+];

        /// A mixer configuration of any registered family; JSON `{"mixer": NAME, …fields}`.
        #[derive(Debug, Clone)]
        pub enum MixerConfig {
            $($Variant($Config)),+
        }

        /// A mixer module of any registered family.
        #[allow(clippy::large_enum_variant)]
        #[derive(Module, Debug)]
        pub enum Mixer {
            $($Variant($Variant)),+
        }

        /// The recurrent state of any registered family.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone)]
        pub enum MixerState {
            $($Variant(<$Variant as SequenceMixer>::State)),+
        }

        impl MixerConfig {
            fn named(name: &str, d_model: usize, small: bool) -> Result<Self, MixerError> {
                $(
                    if name == <$Config as MixerSpec>::NAME {
                        let c = if small { <$Config as MixerSpec>::small(d_model) } else { <$Config as MixerSpec>::with_width(d_model) };
                        return Ok(Self::$Variant(c));
                    }
                )+
                Err(MixerError::UnknownMixer { name: name.into(), known: MIXER_NAMES.join(", ") })
            }

            /// The family's registry name.
            pub fn name(&self) -> &'static str {
                match self { $(Self::$Variant(_) => <$Config as MixerSpec>::NAME),+ }
            }

            pub fn d_model(&self) -> usize {
                match self { $(Self::$Variant(c) => c.d_model()),+ }
            }

            pub fn init(&self, device: &Device) -> Mixer {
                match self { $(Self::$Variant(c) => Mixer::$Variant(c.init(device))),+ }
            }

            /// See [`MixerSpec::init_at`].
            pub fn init_at(&self, layer: usize, n_layers: usize, device: &Device) -> Mixer {
                match self { $(Self::$Variant(c) => Mixer::$Variant(c.init_at(layer, n_layers, device))),+ }
            }

            /// See [`MixerSpec::wants_mlp`].
            pub fn wants_mlp(&self) -> bool {
                match self { $(Self::$Variant(c) => c.wants_mlp()),+ }
            }

            /// See [`MixerSpec::quadratic_bytes`].
            pub fn quadratic_bytes(&self, batch: usize, len: usize) -> Option<f64> {
                match self { $(Self::$Variant(c) => c.quadratic_bytes(batch, len)),+ }
            }

            fn to_json(&self) -> serde_json::Value {
                let (name, mut v) = match self {
                    $(Self::$Variant(c) => (<$Config as MixerSpec>::NAME, serde_json::to_value(c))),+
                };
                if let Ok(serde_json::Value::Object(m)) = &mut v {
                    m.insert("mixer".into(), name.into());
                }
                v.unwrap_or(serde_json::Value::Null)
            }

            fn from_json(mut v: serde_json::Value) -> Result<Self, String> {
                let name = match v.as_object_mut().and_then(|m| m.remove("mixer")) {
                    Some(serde_json::Value::String(s)) => s,
                    _ => return Err("no \"mixer\" name".into()),
                };
                $(
                    if name == <$Config as MixerSpec>::NAME {
                        return serde_json::from_value(v).map(Self::$Variant).map_err(|e| e.to_string());
                    }
                )+
                Err(format!("unknown mixer '{name}' (known: {})", MIXER_NAMES.join(", ")))
            }
        }

        impl serde::Serialize for MixerConfig {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.to_json().serialize(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for MixerConfig {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = serde_json::Value::deserialize(d)?;
                Self::from_json(v).map_err(serde::de::Error::custom)
            }
        }

        impl Mixer {
            /// The family's registry name.
            pub fn name(&self) -> &'static str {
                match self { $(Self::$Variant(_) => <$Config as MixerSpec>::NAME),+ }
            }

            pub fn d_model(&self) -> usize {
                match self { $(Self::$Variant(m) => m.d_model()),+ }
            }

            /// See [`SequenceMixer::plain_step`]; `None` for another family's state too.
            #[allow(unreachable_patterns)]
            pub fn plain_step(&self, state: &MixerState, precision: crate::plain::Precision) -> Option<Box<dyn crate::plain::PlainStep>> {
                match (self, state) {
                    $((Self::$Variant(m), MixerState::$Variant(s)) => m.plain_step(s, precision),)+
                    _ => None,
                }
            }

            /// The state before any token.
            pub fn init_state(&self, batch: usize, device: &Device) -> MixerState {
                match self { $(Self::$Variant(m) => MixerState::$Variant(m.init_state(batch, device))),+ }
            }

            /// [`Mixer::forward`] with its input errors returned instead of panicking.
            #[allow(unreachable_patterns)]
            pub fn try_forward(&self, x: Tensor<3>, state: Option<MixerState>) -> Result<(Tensor<3>, MixerState), MixerError> {
                self.check_input(x.dims())?;
                Ok(match (self, state) {
                    $(
                        (Self::$Variant(m), None) => { let (y, s) = m.forward(x, None); (y, MixerState::$Variant(s)) }
                        (Self::$Variant(m), Some(MixerState::$Variant(s))) => { let (y, s) = m.forward(x, Some(s)); (y, MixerState::$Variant(s)) }
                    )+
                    (m, Some(s)) => return Err(MixerError::WrongState { mixer: m.name(), state: s.name() }),
                })
            }

            /// [`Mixer::step`] with its input errors returned instead of panicking.
            #[allow(unreachable_patterns)]
            pub fn try_step(&self, x: Tensor<2>, state: MixerState) -> Result<(Tensor<2>, MixerState), MixerError> {
                let [b, d] = x.dims();
                self.check_input([b, 1, d])?;
                Ok(match (self, state) {
                    $(
                        (Self::$Variant(m), MixerState::$Variant(s)) => { let (y, s) = m.step(x, s); (y, MixerState::$Variant(s)) }
                    )+
                    (m, s) => return Err(MixerError::WrongState { mixer: m.name(), state: s.name() }),
                })
            }
        }

        impl MixerState {
            /// The registry name of the family this state belongs to.
            pub fn name(&self) -> &'static str {
                match self { $(Self::$Variant(_) => <$Config as MixerSpec>::NAME),+ }
            }

            /// Stacks the states of separate sequences into one batch (batch dimension first), e.g.
            /// after prefilling prompts of different lengths one by one. `None` when they cannot be
            /// stacked (different families, or attention caches of different lengths).
            #[allow(unreachable_patterns)]
            pub fn cat_batch(states: Vec<MixerState>) -> Option<MixerState> {
                match states.first()? {
                    $(
                        MixerState::$Variant(_) => {
                            let inner = states.into_iter().map(|s| match s {
                                MixerState::$Variant(x) => Some(x),
                                _ => None,
                            }).collect::<Option<Vec<_>>>()?;
                            BatchState::cat_batch(inner).map(MixerState::$Variant)
                        }
                    )+
                }
            }

            /// One state per sequence of the batch.
            pub fn split_batch(self) -> Vec<MixerState> {
                match self {
                    $(MixerState::$Variant(s) => s.split_batch().into_iter().map(MixerState::$Variant).collect()),+
                }
            }
        }
    };
}
