//! A small complex-number helper over (re, im) tensor pairs: burn tensors are real, and the
//! S4-family kernels (S4D, LRU, S5) need complex arithmetic with gradients through both parts.

use burn::tensor::Tensor;
use std::ops::{Add, Div, Mul, Sub};

/// A complex tensor stored as two real tensors of one shape.
#[derive(Debug, Clone)]
pub struct ComplexTensor<const D: usize> {
    pub re: Tensor<D>,
    pub im: Tensor<D>,
}

impl<const D: usize> ComplexTensor<D> {
    pub fn new(re: Tensor<D>, im: Tensor<D>) -> Self {
        assert_eq!(re.dims(), im.dims(), "complex tensor: re and im shapes differ");
        Self { re, im }
    }

    /// A purely real value.
    pub fn from_real(re: Tensor<D>) -> Self {
        let im = re.zeros_like();
        Self { re, im }
    }

    pub fn dims(&self) -> [usize; D] {
        self.re.dims()
    }

    /// Multiply by a real tensor (broadcasting).
    pub fn mul_real(self, r: Tensor<D>) -> Self {
        Self { re: self.re * r.clone(), im: self.im * r }
    }

    pub fn mul_scalar(self, s: f64) -> Self {
        Self { re: self.re.mul_scalar(s), im: self.im.mul_scalar(s) }
    }

    pub fn add_scalar(self, s: f64) -> Self {
        Self { re: self.re.add_scalar(s), im: self.im }
    }

    pub fn conj(self) -> Self {
        Self { re: self.re, im: self.im.neg() }
    }

    /// |z|²
    pub fn norm_sqr(&self) -> Tensor<D> {
        self.re.clone().powi_scalar(2) + self.im.clone().powi_scalar(2)
    }

    /// e^{a+ib} = e^a (cos b + i sin b)
    pub fn exp(self) -> Self {
        let m = self.re.exp();
        Self { re: m.clone() * self.im.clone().cos(), im: m * self.im.sin() }
    }

    pub fn sum_dim(self, dim: usize) -> Self {
        Self { re: self.re.sum_dim(dim), im: self.im.sum_dim(dim) }
    }

    pub fn unsqueeze_dim<const D2: usize>(self, dim: usize) -> ComplexTensor<D2> {
        ComplexTensor { re: self.re.unsqueeze_dim(dim), im: self.im.unsqueeze_dim(dim) }
    }

    pub fn narrow(self, dim: usize, start: usize, len: usize) -> Self {
        Self { re: self.re.narrow(dim, start, len), im: self.im.narrow(dim, start, len) }
    }

    /// Matrix product over the last two dimensions: (a + ib)(c + id) = (ac − bd) + i(ad + bc).
    pub fn matmul(self, o: Self) -> Self {
        let re = self.re.clone().matmul(o.re.clone()) - self.im.clone().matmul(o.im.clone());
        let im = self.re.matmul(o.im) + self.im.matmul(o.re);
        Self { re, im }
    }

    pub fn cat(parts: Vec<Self>, dim: usize) -> Self {
        let (re, im): (Vec<_>, Vec<_>) = parts.into_iter().map(|z| (z.re, z.im)).unzip();
        Self { re: Tensor::cat(re, dim), im: Tensor::cat(im, dim) }
    }

    pub fn reshape<const D2: usize>(self, shape: [usize; D2]) -> ComplexTensor<D2> {
        ComplexTensor { re: self.re.reshape(shape), im: self.im.reshape(shape) }
    }

    pub fn flip<const N: usize>(self, axes: [usize; N]) -> Self {
        Self { re: self.re.flip(axes), im: self.im.flip(axes) }
    }

    pub fn swap_dims(self, a: usize, b: usize) -> Self {
        Self { re: self.re.swap_dims(a, b), im: self.im.swap_dims(a, b) }
    }
}

impl<const D: usize> Add for ComplexTensor<D> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self { re: self.re + o.re, im: self.im + o.im }
    }
}

impl<const D: usize> Sub for ComplexTensor<D> {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self { re: self.re - o.re, im: self.im - o.im }
    }
}

/// (a + ib)(c + id) = (ac − bd) + i(ad + bc)
impl<const D: usize> Mul for ComplexTensor<D> {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        let re = self.re.clone() * o.re.clone() - self.im.clone() * o.im.clone();
        let im = self.re * o.im + self.im * o.re;
        Self { re, im }
    }
}

/// z / w = z · conj(w) / |w|²
impl<const D: usize> Div for ComplexTensor<D> {
    type Output = Self;
    fn div(self, o: Self) -> Self {
        let n = o.norm_sqr();
        let p = self * o.conj();
        Self { re: p.re / n.clone(), im: p.im / n }
    }
}
