//! Demo mode: sample data and a token on an empty database, for a first try.

use std::net::SocketAddr;

use anyhow::Context;
use api_actix::AppState;
use domain::admin::ProjectSpec;
use domain::auth::{Caller, Scope};
use domain::input::{FieldInput, TaskInput};
use domain::ports::OrganizationRepository;
use infra_diesel::Database;

/// The request body of the public API page's example, unchanged.
pub const PAGE_EXAMPLE: &str = r#"{"tasks":[{"project_id":1,"task_app_id":"TASK-001","task_name":"Implement OAuth2 Authentication","task_url":"https://client.com/tasks/TASK-001","owner_id":"user-123","owner_name":"John Doe","parent_task_id":3,"created_at":"2024-01-20 09:00:00"}]}"#;

/// Seeds an empty database and prints the token with a ready curl command.
/// Only prints a notice when the database already has an organization.
///
/// # Errors
/// Returns an error when storage fails.
pub async fn seed(database: &Database, state: &AppState, address: SocketAddr) -> anyhow::Result<()> {
    if database.count().await? > 0 {
        println!("demo mode: the database already has data, so no demo token was created.");
        println!("  Create one with: leanmote-api create-token --label demo --organization-id 1");
        return Ok(());
    }
    let admin = crate::admin_use_cases(database);
    let organization = admin.create_organization("Demo organization").await?;
    let spec = ProjectSpec {
        organization_id: organization.id,
        app_id: "DEMO".into(),
        name: "Demo project".into(),
        active: true,
        created_at: None,
    };
    let (project, _) = admin.upsert_project(spec).await?;

    let caller = Caller { token_id: domain::TokenId(0), label: "demo".into(), scope: Scope::new([organization.id]) };
    let tasks = (1..=3).map(|number| demo_task(project.id.get(), number)).collect();
    let processed = state.ingestion.ingest(&caller, tasks).await.context("failed to create the demo tasks")?;
    let (token_id, secret) = admin.create_token("demo", vec![organization.id], None, rand::random()).await?;
    tracing::info!(
        organization.id = organization.id.get(),
        project.id = project.id.get(),
        token.id = token_id.get(),
        "demo data created"
    );

    let task_ids: Vec<String> = processed.iter().filter_map(|task| task.task_id).map(|id| id.to_string()).collect();
    println!(
        "demo mode: created organization {}, project {} with tasks {}, and token {token_id}.",
        organization.id,
        project.id,
        task_ids.join(", ")
    );
    println!("The token is shown only this once:\n  {}", secret.expose());
    println!("Send the API page's example (run it twice: created, then updated):");
    println!(
        "  curl -sS -X POST http://{address}/api/v1/tasks -H 'Authorization: {}' -H 'Content-Type: application/json' -d '{PAGE_EXAMPLE}'",
        secret.expose()
    );
    Ok(())
}

fn demo_task(project_id: i64, number: u32) -> TaskInput {
    TaskInput {
        project_id: FieldInput::Value(project_id),
        task_app_id: FieldInput::Value(format!("DEMO-{number}")),
        task_name: FieldInput::Value(format!("Demo task {number}")),
        created_at: FieldInput::Value("2024-01-15 09:00:00".into()),
        ..TaskInput::default()
    }
}
