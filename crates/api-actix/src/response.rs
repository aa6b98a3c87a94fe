//! Success bodies, shaped as the public API page documents them.

use domain::ingest::ProcessedTask;
use domain::project::Project;
use domain::task::Action;
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
}

/// One processed task. The page's example repeats `task_id`; it appears once here.
#[derive(Serialize)]
struct ProcessedItem {
    project_id: i64,
    task_id: i64,
    task_app_id: String,
    action: &'static str,
}

impl TasksProcessed {
    /// Builds the body from the use case's results, kept in request order.
    pub fn new(processed: Vec<ProcessedTask>) -> Self {
        let processed_tasks = processed
            .into_iter()
            .map(|task| ProcessedItem {
                project_id: task.project_id.get(),
                task_id: task.task_id.get(),
                task_app_id: task.task_app_id,
                action: task.action.as_str(),
            })
            .collect();
        Self { status: "success", message: "Tasks processed successfully", data: ProcessedData { processed_tasks } }
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
