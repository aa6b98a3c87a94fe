//! The one diesel schema shared by both backends.
//!
//! It mirrors `migrations/sqlite` and `migrations/postgres`; the drift test in
//! `tests/schema_drift.rs` fails when they disagree.

diesel::table! {
    organizations (id) {
        id -> BigInt,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    projects (id) {
        id -> BigInt,
        organization_id -> BigInt,
        project_app_id -> Text,
        name -> Text,
        active -> Bool,
        created_at -> Timestamp,
        inserted_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    tasks (id) {
        id -> BigInt,
        project_id -> BigInt,
        task_app_id -> Text,
        task_name -> Text,
        task_url -> Nullable<Text>,
        owner_id -> Nullable<Text>,
        owner_name -> Nullable<Text>,
        parent_task_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        inserted_at -> Timestamp,
        updated_at -> Timestamp,
        insert_token -> BigInt,
        source_updated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    idempotency_keys (token_id, idempotency_key) {
        token_id -> BigInt,
        idempotency_key -> Text,
        fingerprint -> Nullable<Text>,
        response_status -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        label -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    api_token_organizations (token_id, organization_id) {
        token_id -> BigInt,
        organization_id -> BigInt,
    }
}

diesel::joinable!(projects -> organizations (organization_id));
diesel::joinable!(tasks -> projects (project_id));
diesel::joinable!(api_token_organizations -> api_tokens (token_id));
diesel::joinable!(api_token_organizations -> organizations (organization_id));

diesel::allow_tables_to_appear_in_same_query!(organizations, projects, tasks, api_tokens, api_token_organizations);
