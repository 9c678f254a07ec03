//! The demo: simulators, the sample chain and a gentle stream of orders.

use clap::Args;

use crate::config::Settings;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Do not send demo orders (the simulators still run).
    #[arg(long)]
    pub no_traffic: bool,
}

pub async fn run(_settings: Settings, _args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("the demo is being assembled")
}
