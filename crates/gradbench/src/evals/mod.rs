//! The evals, one module each, written like the maths of the eval's README (in upstream
//! GradBench, `evals/<name>/README.md`).

pub mod ba;
pub mod descent;
pub mod det;
pub mod gmm;
pub mod hello;
pub mod ht;
pub mod kmeans;
pub mod llsq;
pub mod lse;
pub mod lstm;
pub mod ode;
pub mod particle;
pub mod saddle;
