//! `cargo run --bin check [wrangler.toml]`: validates the edge config before a deploy.

fn main() -> std::process::ExitCode {
    let path = std::env::args().nth(1).unwrap_or_else(|| "wrangler.toml".into());
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("check: cannot read {path}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match edgelayer::check::check_wrangler_toml(&text) {
        Err(e) => {
            eprintln!("check: {e}");
            std::process::ExitCode::FAILURE
        }
        Ok(results) => {
            let mut ok = true;
            for (env, result) in results {
                let env = if env.is_empty() { "(top level)".to_owned() } else { format!("[env.{env}]") };
                match result {
                    Ok(n) => println!("ok    {env}: {n} rules"),
                    Err(e) => {
                        ok = false;
                        println!("error {env}: {e}");
                    }
                }
            }
            if ok { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE }
        }
    }
}
