use super::Global;
use crate::exit::{CmdResult, Exit, Fail};

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Directory to initialise.
    #[arg(default_value = ".")]
    pub path: std::path::PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(_g: &Global, _a: InitArgs) -> CmdResult {
    Err(Fail::new(Exit::Internal, "not implemented yet"))
}
