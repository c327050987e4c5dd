//! `osiris.yaml`: project configuration.
