//! Settings from a TOML file, below environment variables and flags.

use std::process::Command;

fn leanmote(arguments: &[&str], environment: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leanmote-api"));
    command.args(arguments).env_remove("DATABASE_URL").env_remove("LEANMOTE_CONFIG");
    for (name, value) in environment {
        command.env(name, value);
    }
    command.output().expect("run leanmote-api")
}

#[test]
fn file_sets_defaults_below_env_and_flags() {
    let folder = tempfile::tempdir().unwrap();
    let from_file = folder.path().join("from-file.sqlite3");
    let from_env = folder.path().join("from-env.sqlite3");
    let from_flag = folder.path().join("from-flag.sqlite3");
    let config = folder.path().join("leanmote.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = {:?}\npool_size = 2\n[serve]\nrate_limit_per_minute = 5\n",
            from_file.display().to_string()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    assert!(leanmote(&["--config", config, "migrate"], &[]).status.success());
    assert!(from_file.exists(), "the file's database_url applies");

    let env_url = from_env.to_str().unwrap();
    assert!(leanmote(&["migrate"], &[("LEANMOTE_CONFIG", config), ("DATABASE_URL", env_url)]).status.success());
    assert!(from_env.exists(), "an environment variable wins over the file");

    let flag_url = from_flag.to_str().unwrap();
    assert!(
        leanmote(&["--config", config, "migrate", "--database-url", flag_url], &[("DATABASE_URL", env_url)])
            .status
            .success()
    );
    assert!(from_flag.exists(), "a flag wins over the environment");
}

#[test]
fn invalid_file_stops_with_named_setting() {
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("bad.toml");
    std::fs::write(&config, "pool_sise = 3\n").unwrap();
    let output = leanmote(&["--config", config.to_str().unwrap(), "migrate"], &[]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("pool_sise"));

    std::fs::write(&config, "[serve]\nworkers = \"many\"\n").unwrap();
    let output = leanmote(&["--config", config.to_str().unwrap(), "serve"], &[]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--workers"));

    let missing = leanmote(&["--config", "/nonexistent/leanmote.toml", "migrate"], &[]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("failed to read the configuration file"));
}
