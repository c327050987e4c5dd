use super::Global;
use crate::exit::{CmdResult, Exit, Fail};

#[derive(clap::Subcommand, Debug)]
pub enum OmlCmd {
    /// Placeholder.
    List,
}

pub fn run(_g: &Global, _c: OmlCmd) -> CmdResult {
    Err(Fail::new(Exit::Internal, "not implemented yet"))
}
