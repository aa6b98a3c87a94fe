//! Leanmote's task ingestion rules.
//!
//! This crate contains the value types (organizations, projects, tasks, tokens,
//! timestamps), the input rules of `POST /api/v1/tasks`, the pure planning of
//! a batch upsert and the ports that storage adapters implement. It depends
//! on no HTTP framework, database driver or async runtime, so other services
//! can reuse it with their own adapters. Enable the `mocks` feature to get
//! mockall mocks of every port.

pub mod admin;
pub mod auth;
pub mod clock;
pub mod error;
pub mod idempotency;
pub mod ids;
pub mod ingest;
pub mod input;
pub mod organization;
pub mod outcome;
pub mod plan;
pub mod ports;
pub mod project;
pub mod project_upsert;
pub mod read;
pub mod task;
pub mod text;
pub mod timestamp;
pub mod validate;

pub use error::{DetailCode, ErrorClass, ItemError, Rejection, StoreError};
pub use ids::{OrganizationId, ProjectId, TaskId, TokenId};
pub use timestamp::Timestamp;
