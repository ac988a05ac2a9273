//! `espbridge`: the whole system on one machine (drop folder, SQLite, in-process queue and
//! scheduler, ESP simulators or real accounts, loopback HTTP API).

mod campaign_report;
mod campaigns;
mod check;
mod config;
mod control;
mod conversions_gen;
mod demo;
mod drop_gen;
mod progress;
mod report;
mod serve;
mod stack;
mod templates;

use clap::{Parser, Subcommand};
use espbridge_core::EspKind;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "espbridge",
    version,
    about = "Connects customer segments to e-mail service providers, locally."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generates a realistic nightly drop and runs it end to end against the ESP simulators,
    /// fast-forwarding a manual clock through the seven days of metrics.
    Demo {
        /// Only this ESP (default: every ESP with an adapter).
        #[arg(long, value_parser = parse_esp)]
        esp: Option<EspKind>,
        /// Valid customers in the audience (about 1% bad rows are added).
        #[arg(long, default_value_t = 20_000)]
        customers: u64,
        /// Folder for the drop, the campaign store and report.json.
        #[arg(long, default_value = "espbridge-demo")]
        out: PathBuf,
        /// Seed of the audience generator (same seed, same files).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Runs the local stack: watches the drop folder, uploads, schedules, polls metrics, and
    /// serves the HTTP API on 127.0.0.1.
    Serve {
        /// TOML file with `[[accounts]]` and optional `drop_dir`, `state_dir`, `port`, `token`
        /// (default: one simulator per supported ESP).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Base folder: drops in DIR/drops, the campaign store in DIR/state.
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        port: Option<u16>,
        /// Concurrent workers of the local queue (the template's reserved concurrency).
        #[arg(long, default_value_t = espbridge_local::worker::DEFAULT_WORKERS)]
        workers: usize,
        /// Seconds before a step interrupted by a retryable error (an ESP's 503, say) gets its
        /// message again, doubling per receive up to a minute, with jitter: SQS's visibility
        /// timeout. The 5th receive is the last: interrupted too, it fails the campaign with the
        /// reason.
        #[arg(long, value_name = "SECS", default_value_t = espbridge_local::Redelivery::default().first.as_secs())]
        redeliver_after: u64,
        /// Token every API request must bear (`Authorization: Bearer TOKEN`), 16 to 1024
        /// visible ASCII characters; without one the API only reads (PUT is refused). Prefer
        /// ESPBRIDGE_TOKEN or `token` in the file: a command line is visible to other users.
        #[arg(
            long,
            value_name = "TOKEN",
            env = "ESPBRIDGE_TOKEN",
            hide_env_values = true
        )]
        token: Option<String>,
    },
    /// One campaign's analysis report (per-variant rates, A/B verdict, uplift against the
    /// control group) from the local stack's campaign store; no ESP is contacted.
    Report(campaign_report::ReportArgs),
    /// The night at a glance from the local stack's campaign store: counts per state, then one
    /// line per campaign (failures first, with their reasons); `--json` prints `GET /campaigns`.
    Campaigns(campaigns::CampaignsArgs),
    /// Lists the templates a marketer may choose (exactly what `GET /templates` returns).
    Templates {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, value_parser = parse_esp)]
        esp: Option<EspKind>,
        #[arg(long)]
        account: Option<String>,
        /// Only templates whose name or display name starts with this.
        #[arg(long)]
        prefix: Option<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Checks a drop folder without uploading or sending anything: the manifest, every
    /// audience file, the templates at the ESP, the send window and the upload's time under
    /// the account's limits. Exits 0 when the drop would go through, 1 when it would not (with
    /// the reasons), 2 when it could not be checked.
    Check(check::CheckArgs),
    /// Cancels a campaign before its send time: unschedules its sends at the ESP (where the
    /// ESP's API can), deletes its poll schedule. Asks the running `espbridge serve`.
    Cancel(control::ControlArgs),
    /// Resumes a failed campaign at its failed step, from its checkpoints (never uploading a
    /// batch twice, never booking a second send). Asks the running `espbridge serve`.
    Retry(control::ControlArgs),
}

fn parse_esp(s: &str) -> Result<EspKind, String> {
    EspKind::parse(s).map_err(|e| e.to_string())
}

fn init_logging() {
    // With a progress bar on the terminal only warnings are logged, so lines do not tear the bar.
    let default = if progress::interactive() {
        "warn"
    } else {
        "warn,espbridge=info,espbridge_core=info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(progress::interactive())
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo {
                esp,
                customers,
                out,
                seed,
            } => {
                demo::run(demo::DemoArgs {
                    esp,
                    customers,
                    out,
                    seed,
                })
                .await
            }
            Command::Serve {
                config,
                dir,
                port,
                workers,
                redeliver_after,
                token,
            } => {
                serve::run(
                    serve::ServeArgs {
                        config,
                        dir,
                        port,
                        workers,
                        redeliver_after: std::time::Duration::from_secs(redeliver_after),
                    },
                    token.map(espbridge_api::Token::from),
                )
                .await
            }
            Command::Report(args) => campaign_report::run(args).await,
            Command::Campaigns(args) => campaigns::run(args).await,
            Command::Templates {
                config,
                esp,
                account,
                prefix,
                json,
            } => {
                templates::run(templates::TemplatesArgs {
                    config,
                    esp,
                    account,
                    prefix,
                    json,
                })
                .await
            }
            Command::Check(args) => check::run(args).await,
            Command::Cancel(args) => control::run(control::Op::Cancel, args).await,
            Command::Retry(args) => control::run(control::Op::Retry, args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
