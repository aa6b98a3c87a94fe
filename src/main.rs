//! `leanmote-api`: the task ingestion service and its admin commands.

#[global_allocator]
static ALLOCATOR: leanmote_api::allocator::Jemalloc = leanmote_api::allocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = match leanmote_api::config_file::parse_cli(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("error: {error:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    leanmote_api::logging::init(cli.log_format);
    let runtime = actix_web::rt::System::new();
    match runtime.block_on(leanmote_api::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
