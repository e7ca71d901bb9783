//! `gyre log`: the journal of everything the team did and why.

use crate::{App, AppError};
use gyre_store::JournalEntry;
use serde::Serialize;

#[derive(Serialize)]
pub struct LogReport {
    pub entries: Vec<JournalEntry>,
}

impl App {
    pub fn log(&mut self) -> Result<LogReport, AppError> {
        Ok(LogReport {
            entries: self.store.read(|tx| tx.journal())?,
        })
    }
}
