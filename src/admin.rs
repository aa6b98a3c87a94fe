//! The admin subcommands: organizations, projects and tokens.

use anyhow::bail;
use chrono::Duration;
use domain::admin::{Admin, ProjectSpec};
use domain::{OrganizationId, Timestamp, TokenId};

use crate::cli::Command;

/// Runs one admin subcommand and prints its result on standard output.
///
/// # Errors
/// Returns the use case's error, which names the invalid field or missing id.
pub async fn run(admin: &Admin, command: Command) -> anyhow::Result<()> {
    match command {
        Command::CreateOrganization { name } => {
            let organization = admin.create_organization(&name).await?;
            println!("created organization {} ({})", organization.id, organization.name);
        }
        Command::CreateProject { organization_id, app_id, name, inactive } => {
            let spec = ProjectSpec {
                organization_id: OrganizationId(organization_id),
                app_id,
                name,
                active: !inactive,
                created_at: None,
            };
            let (project, action) = admin.upsert_project(spec).await?;
            println!(
                "{} project {} ({}) in organization {}",
                action.as_str(),
                project.id,
                project.app_id,
                project.organization_id
            );
        }
        Command::CreateToken { label, organization_ids, expires_in_days } => {
            let expires_at = expires_in_days
                .map(|days| Timestamp::from_utc(admin.clock.now().as_naive() + Duration::days(i64::from(days))));
            let organizations = organization_ids.into_iter().map(OrganizationId).collect();
            let (id, secret) = admin.create_token(&label, organizations, expires_at, rand::random()).await?;
            println!("created token {id} for {label:?}. It is shown only this once:");
            println!("{}", secret.expose());
        }
        Command::RevokeToken { id } => {
            if !admin.revoke_token(TokenId(id)).await? {
                bail!("token {id} was not found");
            }
            println!(
                "revoked token {id}; running servers reject it within their token cache time (LEANMOTE_TOKEN_CACHE_SECS, 5 s by default)"
            );
        }
        Command::Serve(_) | Command::Migrate | Command::Import(_) => unreachable!("not an admin command"),
    }
    Ok(())
}
