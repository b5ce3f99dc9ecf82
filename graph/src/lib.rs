//! ssm-graph: transductive node classification on petgraph graphs — Graph-Mamba (a GPS layer
//! whose global branch is any registered sequence mixer over degree-ordered nodes), with GCN
//! and GAT baselines. Message passing is sparse (gather / scatter-add over the edge list).
//!
//! ```no_run
//! use ssm_graph::data::load_planetoid;
//! let g = load_planetoid(std::path::Path::new("../shared/data/graph/planetoid/cora")).unwrap();
//! assert_eq!(g.n_nodes(), 2708);
//! ```

pub mod data;
pub mod gat;
pub mod gcn;
pub mod graph_mamba;
pub mod model;
pub mod pca;
pub mod sparse;
pub mod synthetic;
