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

/// A page of the journal, newest first, filtered by person, command and time.
#[derive(Serialize)]
pub struct JournalPageReport {
    pub entries: Vec<JournalEntry>,
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    /// Everyone who appears in the journal (for a filter's choices).
    pub users: Vec<String>,
}

impl App {
    pub fn journal_page(
        &mut self,
        query: &gyre_store::JournalQuery,
    ) -> Result<JournalPageReport, AppError> {
        let mut q = query.clone();
        q.limit = q.limit.clamp(1, crate::runs::MAX_PAGE);
        if let Some(s) = &q.since {
            q.since = Some(crate::monitor::parse_since(s)?);
        }
        let (page, users) = self
            .store
            .read(|tx| Ok::<_, AppError>((tx.journal_page(&q)?, tx.journal_users()?)))?;
        Ok(JournalPageReport {
            entries: page.entries,
            total: page.total,
            offset: q.offset,
            limit: q.limit,
            users,
        })
    }
}
