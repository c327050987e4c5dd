use super::Global;
use crate::exit::{CmdResult, Exit, Fail};

#[derive(clap::Subcommand, Debug)]
pub enum ComponentsCmd {
    /// Placeholder.
    List,
}

pub fn run(_g: &Global, _c: ComponentsCmd) -> CmdResult {
    Err(Fail::new(Exit::Internal, "not implemented yet"))
}
