DROP TABLE api_token_organizations;
DROP TABLE api_tokens;
DROP TABLE tasks;
DROP TABLE projects;
DROP TABLE organizations;
