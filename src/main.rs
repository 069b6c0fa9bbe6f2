/// mimalloc: the request path allocates and frees many small objects across threads (the body
/// parsed on a worker, the item freed by the indexer), where glibc's arenas spend more.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use gcemu::app::App;
use gcemu::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = args.into_config();
            // Held to the end of `serve`: dropping it flushes the last log lines.
            let _log = gcemu::telemetry::init(config.log_format);
            let app = App::build(config).await?;
            // The handlers are installed before the ready line, so a SIGTERM sent as soon as
            // gcemu says it is ready stops it gracefully instead of killing it.
            let shutdown = shutdown_signal()?;
            println!("{}", app.ready_line());
            app.serve(shutdown).await?;
            tracing::info!("gcemu stopped");
        }
        Command::Healthcheck(args) => {
            match gcemu::healthcheck::check(&gcemu::healthcheck::effective_url(&args.url)).await {
                Ok(body) => println!("healthy: {body}"),
                Err(reason) => {
                    eprintln!("{reason}");
                    std::process::exit(1);
                }
            }
        }
        Command::Expect(args) => {
            let code = gcemu::expect::run(&args).await;
            std::process::exit(code);
        }
        Command::Report(args) => {
            let code = gcemu::report_cli::run(&args).await;
            std::process::exit(code);
        }
        Command::Conformance(args) => {
            let code = gcemu::conformance::run(&args).await;
            std::process::exit(code);
        }
        Command::Token(args) => match gcemu::token_cli::run(args).await {
            Ok(token) => println!("{token}"),
            Err(message) => {
                eprintln!("gcemu token: {message}");
                std::process::exit(2);
            }
        },
    }
    Ok(())
}

/// Installs the SIGINT (Ctrl-C) and SIGTERM handlers now, and answers a future that completes
/// on either.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
