//! `edgemeter completions` and `edgemeter man`: the command line described
//! for shells and for `man`, from the clap command `cli` hands over.

use super::Outcome;
use crate::aws::S3Settings;
use crate::error::{Error, Result};

/// Prints the completion script of `shell`.
pub(crate) fn completions(
    shell: clap_complete::Shell,
    mut command: clap::Command,
) -> Result<Outcome> {
    clap_complete::generate(shell, &mut command, "edgemeter", &mut std::io::stdout());
    Ok(Outcome::Done)
}

/// Prints the man page (roff).
pub(crate) async fn man(command: clap::Command) -> Result<Outcome> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .map_err(|e| Error::io("<man page>", e))?;
    crate::lake::write_output("-", page.into(), &S3Settings::default()).await?;
    Ok(Outcome::Done)
}
