//! `yetifs status MOUNTPOINT [--json]`: asks the mount's control socket for its report and
//! prints it, for people or as JSON for scripts.
use std::path::PathBuf;

/// Arguments of `yetifs status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The mountpoint of a running `yetifs mount`.
    pub mountpoint: PathBuf,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs `yetifs status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let report = crate::control::socket::query(&args.mountpoint).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}
