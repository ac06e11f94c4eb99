//! Guardrail rule sets: named lists of rules a connection references by id
//! in its `guardrail_rules`.

use super::{Row, Store, StoreError};

/// A guardrail rule set. `input` and `output` are JSON arrays of rule
/// objects in `hoop-masking`'s format, validated before they are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardrailRecord {
    /// Generated id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Rules judging statements, a JSON array.
    pub input: String,
    /// Rules judging results, a JSON array.
    pub output: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Last change, Unix seconds.
    pub updated_at: i64,
}

impl GuardrailRecord {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.text(0)?,
            name: row.text(1)?,
            description: row.text(2)?,
            input: row.text(3)?,
            output: row.text(4)?,
            created_at: row.int(5)?,
            updated_at: row.int(6)?,
        })
    }
}

impl Store {
    /// Adds a rule set.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the name exists.
    pub async fn insert_guardrail(&self, guardrail: &GuardrailRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO guardrails (id, name, description, input_rules, output_rules, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                guardrail.id.as_str().into(),
                guardrail.name.as_str().into(),
                guardrail.description.as_str().into(),
                guardrail.input.as_str().into(),
                guardrail.output.as_str().into(),
                guardrail.created_at.into(),
                guardrail.updated_at.into(),
            ],
        )
        .await
        .map(drop)
    }

    /// Every rule set, by name.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn list_guardrails(&self) -> Result<Vec<GuardrailRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, name, description, input_rules, output_rules, created_at, updated_at \
                 FROM guardrails ORDER BY name",
                vec![],
            )
            .await?;
        rows.iter().map(GuardrailRecord::from_row).collect()
    }

    /// The rule set with this id or name.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn find_guardrail(
        &self,
        name_or_id: &str,
    ) -> Result<Option<GuardrailRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, name, description, input_rules, output_rules, created_at, updated_at \
                 FROM guardrails WHERE id = $1 OR name = $1",
                vec![name_or_id.into()],
            )
            .await?;
        rows.first().map(GuardrailRecord::from_row).transpose()
    }

    /// Replaces a rule set's name, description and rules; false when there
    /// was none.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the new name is taken.
    pub async fn update_guardrail(&self, guardrail: &GuardrailRecord) -> Result<bool, StoreError> {
        Ok(self
            .execute(
                "UPDATE guardrails SET name = $2, description = $3, input_rules = $4, \
                 output_rules = $5, updated_at = $6 WHERE id = $1",
                vec![
                    guardrail.id.as_str().into(),
                    guardrail.name.as_str().into(),
                    guardrail.description.as_str().into(),
                    guardrail.input.as_str().into(),
                    guardrail.output.as_str().into(),
                    guardrail.updated_at.into(),
                ],
            )
            .await?
            > 0)
    }

    /// Removes a rule set; false when there was none.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn delete_guardrail(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .execute("DELETE FROM guardrails WHERE id = $1", vec![id.into()])
            .await?
            > 0)
    }
}
