use clap::Parser;
use gcemu::app::App;
use gcemu::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = args.into_config();
            gcemu::telemetry::init(config.log_format);
            let app = App::build(config).await?;
            println!("{}", app.ready_line());
            app.serve(shutdown_signal()).await?;
            tracing::info!("gcemu stopped");
        }
        Command::Healthcheck(args) => match gcemu::healthcheck::check(&args.url).await {
            Ok(body) => println!("healthy: {body}"),
            Err(reason) => {
                eprintln!("{reason}");
                std::process::exit(1);
            }
        },
        Command::Token(args) => {
            println!(
                "{}",
                gcemu::auth::mint(&args.into_request(), chrono::Utc::now())
            );
        }
    }
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}
