//! The demo origin server: `cargo run --release --bin origin -- --help`.

use clap::Parser;
use edgelayer::origin::{app, AppState, Settings};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Colours only on a terminal: log collectors read `key=value` as it is.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt().with_ansi(ansi).with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())).init();
    let settings = Settings::parse();
    let state = match AppState::open(&settings) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("origin: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(settings.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("origin: cannot listen on {}: {e}", settings.addr);
            return std::process::ExitCode::FAILURE;
        }
    };
    if let (Some(raw_addr), Some(lab)) = (settings.lab_raw_addr, state.lab.clone()) {
        match tokio::net::TcpListener::bind(raw_addr).await {
            Ok(l) => {
                println!("origin raw lab listening on http://{raw_addr}");
                tokio::spawn(edgelayer::origin::raw_lab::serve(l, lab));
            }
            Err(e) => {
                eprintln!("origin: cannot listen on {raw_addr}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(%addr, files = state.site.len(), lab = settings.lab, data = %settings.data.display(), "origin listening");
    // Printed on stdout so scripts and tests can wait for it.
    println!("origin listening on http://{addr}");
    let served = axum::serve(listener, app(state, settings.max_body)).with_graceful_shutdown(shutdown_signal()).await;
    match served {
        Ok(()) => {
            tracing::info!("origin stopped");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("origin: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM, letting in-flight requests finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
