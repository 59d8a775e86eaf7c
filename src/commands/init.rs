//! `edgemeter init`: start a lake whose key ids are keyed by a new secret.

use super::{LakeArgs, Outcome};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::render::SecretKept;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    /// Write the new secret to this file (created, mode 0600; it must not
    /// exist); runs read it through EDGEMETER_KEY_SECRET_FILE. Without it
    /// the secret is printed once, for EDGEMETER_KEY_SECRET.
    #[arg(long)]
    pub(crate) secret_file: Option<PathBuf>,
    /// Store the new secret in AWS Secrets Manager under this name (never
    /// replacing a secret); runs read it through EDGEMETER_KEY_SECRET_ID.
    #[arg(long, value_name = "NAME", conflicts_with = "secret_file")]
    pub(crate) secret_manager: Option<String>,
}

/// Creates the lake, makes and stores the secret, records how keys are hashed.
pub(crate) async fn run(args: InitArgs) -> Result<Outcome> {
    let (location, s3) = args.lake.resolve()?;
    let lake = Lake::open_or_create(&location, &s3).await?;
    if let Some(recorded) = crate::lake::keying::load(&lake).await? {
        return Err(Error::Config(format!(
            "{} already records how its keys are hashed ({}); init starts new lakes only",
            location, recorded.mode
        )));
    }
    let secret = crate::key::generate_secret();
    let hasher = crate::key::KeyHasher::new(Some(secret.clone().into_bytes()));
    if let Some(path) = &args.secret_file {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        writeln!(file, "{secret}").map_err(|e| Error::io(path, e))?;
    }
    let stored = match &args.secret_manager {
        Some(name) => Some(crate::key::create_managed_secret(name, &secret).await?),
        None => None,
    };
    crate::lake::keying::check_or_record(&lake, hasher.fingerprint()).await?;
    let fingerprint = hasher.fingerprint().unwrap_or_default();
    let kept = match (&args.secret_file, &args.secret_manager) {
        (Some(path), _) => SecretKept::File(path),
        (None, Some(name)) => SecretKept::Manager {
            name,
            stored: stored.unwrap_or_default(),
        },
        (None, None) => SecretKept::Shown(&secret),
    };
    print!(
        "{}",
        crate::render::initialised(&location, &fingerprint, &kept)
    );
    Ok(Outcome::Done)
}
