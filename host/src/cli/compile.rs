use super::Global;
use crate::exit::{CmdResult, Exit, Fail};

#[derive(clap::Args, Debug)]
pub struct CompileArgs {
    /// Pipeline file.
    pub file: std::path::PathBuf,
}

pub fn run(_g: &Global, _a: CompileArgs) -> CmdResult {
    Err(Fail::new(Exit::Internal, "not implemented yet"))
}
