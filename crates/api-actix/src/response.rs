//! Success bodies, shaped as the public API page documents them.

use domain::ingest::ProcessedTask;
use domain::organization::Organization;
use domain::project::Project;
use domain::task::Action;
use domain::task::StoredTask;
use serde::Serialize;

/// `{"status":"success","message":...,"data":{"processed_tasks":[...]}}`.
#[derive(Serialize)]
pub struct TasksProcessed {
    status: &'static str,
    message: &'static str,
    data: ProcessedData,
}

#[derive(Serialize)]
struct ProcessedData {
    processed_tasks: Vec<ProcessedItem>,
    /// Flag present, and true, only in the response of a dry run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
}

/// One processed task. The page's example repeats `task_id`; it appears once here.
/// The fields after `action` extend the public page's response.
#[derive(Serialize)]
pub(crate) struct ProcessedItem {
    project_id: i64,
    task_id: Option<i64>,
    task_app_id: String,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    changed_fields: Vec<&'static str>,
    created_at: String,
    warnings: Vec<WarningBody>,
}

#[derive(Serialize)]
struct WarningBody {
    code: &'static str,
    message: String,
}

impl From<&ProcessedTask> for ProcessedItem {
    fn from(task: &ProcessedTask) -> Self {
        Self {
            project_id: task.project_id.get(),
            task_id: task.task_id.map(|id| id.get()),
            task_app_id: task.task_app_id.clone(),
            action: task.action.as_str(),
            reason: task.action.reason(),
            changed_fields: task.changed_fields.iter().map(|field| field.as_str()).collect(),
            created_at: task.created_at.to_api_string(),
            warnings: task
                .warnings
                .iter()
                .map(|warning| WarningBody { code: warning.code.as_str(), message: warning.message.clone() })
                .collect(),
        }
    }
}

impl TasksProcessed {
    /// Builds the body from the use case's results, kept in request order.
    pub fn new(processed: &[ProcessedTask], dry_run: bool) -> Self {
        let processed_tasks = processed.iter().map(ProcessedItem::from).collect();
        Self {
            status: "success",
            message: "Tasks processed successfully",
            data: ProcessedData { processed_tasks, dry_run },
        }
    }

    /// Renders the body as JSON text: the exact bytes sent and stored for replays.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a body of strings and numbers always serializes")
    }
}

/// `{"status":"success","message":...,"data":{"project_id","project_app_id","action"}}`.
#[derive(Serialize)]
pub struct ProjectProcessed {
    status: &'static str,
    message: &'static str,
    data: ProjectData,
}

#[derive(Serialize)]
struct ProjectData {
    project_id: i64,
    project_app_id: String,
    action: &'static str,
}

impl ProjectProcessed {
    /// Builds the body for one upserted project.
    pub fn new(project: Project, action: Action) -> Self {
        let message = match action {
            Action::Created => "Project created successfully",
            Action::Updated => "Project updated successfully",
        };
        let data =
            ProjectData { project_id: project.id.get(), project_app_id: project.app_id, action: action.as_str() };
        Self { status: "success", message, data }
    }
}

/// `{"status":"success","message":...,"data":{"processed_projects":[...]}}`, in request order.
#[derive(Serialize)]
pub struct ProjectsProcessed {
    status: &'static str,
    message: &'static str,
    data: ProcessedProjects,
}

#[derive(Serialize)]
struct ProcessedProjects {
    processed_projects: Vec<ProjectData>,
}

impl ProjectsProcessed {
    /// Builds the body for a batch of upserted projects.
    pub fn new(processed: Vec<(Project, Action)>) -> Self {
        let processed_projects = processed
            .into_iter()
            .map(|(project, action)| ProjectData {
                project_id: project.id.get(),
                project_app_id: project.app_id,
                action: action.as_str(),
            })
            .collect();
        Self {
            status: "success",
            message: "Projects processed successfully",
            data: ProcessedProjects { processed_projects },
        }
    }
}

/// An organization in read responses.
#[derive(Serialize)]
pub struct OrganizationBody {
    organization_id: i64,
    name: String,
    created_at: String,
}

impl From<Organization> for OrganizationBody {
    fn from(organization: Organization) -> Self {
        Self {
            organization_id: organization.id.get(),
            name: organization.name,
            created_at: organization.created_at.to_api_string(),
        }
    }
}

/// A project in read responses.
#[derive(Serialize)]
pub struct ProjectBody {
    project_id: i64,
    organization_id: i64,
    project_app_id: String,
    name: String,
    active: bool,
    created_at: String,
    inserted_at: String,
    updated_at: String,
}

impl From<Project> for ProjectBody {
    fn from(project: Project) -> Self {
        Self {
            project_id: project.id.get(),
            organization_id: project.organization_id.get(),
            project_app_id: project.app_id,
            name: project.name,
            active: project.active,
            created_at: project.created_at.to_api_string(),
            inserted_at: project.inserted_at.to_api_string(),
            updated_at: project.updated_at.to_api_string(),
        }
    }
}

/// A task with every stored field, in read responses.
#[derive(Serialize)]
pub struct TaskBody {
    task_id: i64,
    project_id: i64,
    task_app_id: String,
    task_name: String,
    task_url: Option<String>,
    owner_id: Option<String>,
    owner_name: Option<String>,
    parent_task_id: Option<i64>,
    created_at: String,
    source_updated_at: Option<String>,
    inserted_at: String,
    updated_at: String,
}

impl From<StoredTask> for TaskBody {
    fn from(task: StoredTask) -> Self {
        Self {
            task_id: task.id.get(),
            project_id: task.key.project_id.get(),
            task_app_id: task.key.app_id.into_inner(),
            task_name: task.fields.name.into_inner(),
            task_url: task.fields.url.map(|url| url.as_str().to_owned()),
            owner_id: task.fields.owner_id.map(|owner| owner.into_inner()),
            owner_name: task.fields.owner_name.map(|owner| owner.into_inner()),
            parent_task_id: task.parent_id.map(|id| id.get()),
            created_at: task.fields.created_at.to_api_string(),
            source_updated_at: task.fields.source_updated_at.map(|at| at.to_api_string()),
            inserted_at: task.inserted_at.to_api_string(),
            updated_at: task.updated_at.to_api_string(),
        }
    }
}
