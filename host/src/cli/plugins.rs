use super::Global;
use crate::exit::{CmdResult, Exit, Fail};

#[derive(clap::Subcommand, Debug)]
pub enum PluginsCmd {
    /// Placeholder.
    List,
}

pub fn run(_g: &Global, _c: PluginsCmd) -> CmdResult {
    Err(Fail::new(Exit::Internal, "not implemented yet"))
}
