//! The compiled policy: immutable, shared, cheap to clone.

use std::collections::HashMap;
use std::sync::Arc;

use crate::columns::{
    ColumnGlob, ColumnInfo, ColumnPlan, PathGlob, ResultPlan, ValueKind, plan_scan, plan_whole,
};
use crate::content::FieldPath;
use crate::detect::{ColumnGates, Matcher};
use crate::entity::{EntityId, EntityType};
use crate::error::{PolicyError, PolicyErrorKind};
use crate::guardrails::Guardrails;
use crate::masker::CellMasker;
use crate::policy::{ColumnAction, Policy, Transform};
use crate::transform::CompiledTransform;

/// A policy compiled once into its matcher, column rules and guardrails.
///
/// Immutable, `Send + Sync`, and cloned by bumping a reference count: build it once per
/// connection configuration and hand a clone to every session.
///
/// # Examples
///
/// ```
/// use hoop_masking::{CellOutcome, ColumnInfo, Policy, ValueKind};
///
/// let policy = Policy::from_json("{}")?.compile()?;
/// let plan = policy.plan(&[ColumnInfo::new("note", ValueKind::Text)]);
/// let mut masker = policy.masker();
/// let mut out = Vec::new();
/// let outcome = masker.mask_cell(&plan, 0, b"mail bob@example.com", &mut out);
/// assert_eq!(outcome, CellOutcome::Replaced);
/// assert_eq!(out, b"mail [REDACTED:EMAIL_ADDRESS]");
/// # Ok::<(), hoop_masking::PolicyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct EntityEntry {
    pub(crate) name: Box<str>,
    pub(crate) label: Box<[u8]>,
    pub(crate) transform: CompiledTransform,
}

#[derive(Debug)]
struct ColumnRuleEntry {
    globs: Vec<ColumnGlob>,
    action: ColumnAction,
    entity: EntityId,
    transform: CompiledTransform,
}

#[derive(Debug)]
pub(crate) struct FieldRuleEntry {
    globs: Vec<PathGlob>,
    action: ColumnAction,
    entity: EntityId,
    pub(crate) transform: CompiledTransform,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) entities: Vec<EntityEntry>,
    pub(crate) matcher: Matcher,
    column_rules: Vec<ColumnRuleEntry>,
    pub(crate) field_rules: Vec<FieldRuleEntry>,
    pub(crate) dob_columns: Vec<String>,
    /// `masking.max_cell_bytes`: larger values are masked whole.
    pub(crate) max_cell_bytes: usize,
    pub(crate) guardrails: Guardrails,
}

const MAX_ENTITIES: usize = u16::MAX as usize;

/// Entities in id order while a policy compiles.
#[derive(Default)]
struct EntityTable {
    entities: Vec<EntityEntry>,
    by_name: HashMap<String, EntityId>,
}

impl EntityTable {
    fn add(
        &mut self,
        name: &str,
        transform: CompiledTransform,
        path: &str,
    ) -> Result<EntityId, PolicyError> {
        if self.by_name.contains_key(name) {
            return Err(PolicyError::new(
                path,
                PolicyErrorKind::Duplicate(name.to_owned()),
            ));
        }
        let Ok(index) = u16::try_from(self.entities.len()) else {
            return Err(PolicyError::new(
                path,
                PolicyErrorKind::TooManyEntities(MAX_ENTITIES),
            ));
        };
        let id = EntityId(index);
        self.entities.push(EntityEntry {
            name: name.into(),
            label: format!("[REDACTED:{name}]").into_bytes().into(),
            transform,
        });
        self.by_name.insert(name.to_owned(), id);
        Ok(id)
    }
}

impl Default for CompiledPolicy {
    /// The default policy (`{}`): the default entity set, redacted; no guardrails.
    fn default() -> Self {
        Self::build(&Policy::default())
            .unwrap_or_else(|_| unreachable!("the default policy compiles"))
    }
}

impl Policy {
    /// Checks the policy and compiles its matcher, column rules and guardrails.
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] naming the field: a regex that does not compile, an empty word
    /// list, a custom entity with both or neither of `regex` and `words`, a duplicate
    /// entity name, a transform for an unknown entity, an empty HMAC key.
    pub fn compile(&self) -> Result<CompiledPolicy, PolicyError> {
        CompiledPolicy::build(self)
    }
}

impl CompiledPolicy {
    fn build(policy: &Policy) -> Result<Self, PolicyError> {
        let m = &policy.masking;
        let transform = |t: &Transform, path: String| {
            CompiledTransform::new(t)
                .ok_or_else(|| PolicyError::new(format!("{path}.key"), PolicyErrorKind::Empty))
        };
        let default = transform(&m.transform, "masking.transform".into())?;
        let mut overrides = HashMap::new();
        for (name, t) in &m.transforms {
            overrides.insert(
                name.as_str(),
                transform(t, format!("masking.transforms.{name}"))?,
            );
        }

        let mut table = EntityTable::default();
        let mut builtins = Vec::new();
        for (i, ty) in m.entities.iter().enumerate() {
            let name = ty.name();
            let t = overrides
                .get(name)
                .cloned()
                .unwrap_or_else(|| default.clone());
            builtins.push((*ty, table.add(name, t, &format!("masking.entities[{i}]"))?));
        }
        let mut words = Vec::new();
        let mut regexes = Vec::new();
        let mut regex_paths = Vec::new();
        for (i, c) in m.custom_entities.iter().enumerate() {
            let path = format!("masking.custom_entities[{i}]");
            if c.name.is_empty() {
                return Err(PolicyError::new(
                    format!("{path}.name"),
                    PolicyErrorKind::Empty,
                ));
            }
            if EntityType::from_name(&c.name).is_some() {
                return Err(PolicyError::new(
                    format!("{path}.name"),
                    PolicyErrorKind::Duplicate(c.name.clone()),
                ));
            }
            let t = match (&c.transform, overrides.get(c.name.as_str())) {
                (Some(t), _) => transform(t, format!("{path}.transform"))?,
                (None, Some(t)) => t.clone(),
                (None, None) => default.clone(),
            };
            let id = table.add(&c.name, t, &format!("{path}.name"))?;
            match (&c.regex, c.words.is_empty()) {
                (Some(r), true) => {
                    if r.is_empty() {
                        return Err(PolicyError::new(
                            format!("{path}.regex"),
                            PolicyErrorKind::Empty,
                        ));
                    }
                    regexes.push((r.clone(), id));
                    regex_paths.push(format!("{path}.regex"));
                }
                (None, false) => {
                    if let Some(k) = c.words.iter().position(String::is_empty) {
                        return Err(PolicyError::new(
                            format!("{path}.words[{k}]"),
                            PolicyErrorKind::Empty,
                        ));
                    }
                    words.push((c.words.clone(), id));
                }
                _ => return Err(PolicyError::new(path, PolicyErrorKind::RegexOrWords)),
            }
        }

        let mut column_rules = Vec::new();
        for (i, r) in m.columns.iter().enumerate() {
            let path = format!("masking.columns[{i}]");
            if r.columns.is_empty() {
                return Err(PolicyError::new(
                    format!("{path}.columns"),
                    PolicyErrorKind::Empty,
                ));
            }
            let explicit = r
                .transform
                .as_ref()
                .map(|t| transform(t, format!("{path}.transform")))
                .transpose()?;
            let (entity, t) = rule_entity(
                &mut table,
                r.entity.as_deref().unwrap_or("COLUMN"),
                explicit,
                &overrides,
                &default,
                &format!("{path}.entity"),
            )?;
            column_rules.push(ColumnRuleEntry {
                globs: r.columns.iter().map(|c| ColumnGlob::new(c)).collect(),
                action: r.action,
                entity,
                transform: t,
            });
        }
        let mut field_rules = Vec::new();
        for (i, r) in m.fields.iter().enumerate() {
            let path = format!("masking.fields[{i}]");
            if r.paths.is_empty() {
                return Err(PolicyError::new(
                    format!("{path}.paths"),
                    PolicyErrorKind::Empty,
                ));
            }
            let globs = r
                .paths
                .iter()
                .enumerate()
                .map(|(k, p)| {
                    PathGlob::new(p).ok_or_else(|| {
                        PolicyError::new(format!("{path}.paths[{k}]"), PolicyErrorKind::FieldPath)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let explicit = r
                .transform
                .as_ref()
                .map(|t| transform(t, format!("{path}.transform")))
                .transpose()?;
            let (entity, t) = rule_entity(
                &mut table,
                r.entity.as_deref().unwrap_or("FIELD"),
                explicit,
                &overrides,
                &default,
                &format!("{path}.entity"),
            )?;
            field_rules.push(FieldRuleEntry {
                globs,
                action: r.action,
                entity,
                transform: t,
            });
        }
        for name in m.transforms.keys() {
            if !table.by_name.contains_key(name) && EntityType::from_name(name).is_none() {
                return Err(PolicyError::new(
                    format!("masking.transforms.{name}"),
                    PolicyErrorKind::UnknownEntity(name.clone()),
                ));
            }
        }

        let matcher = Matcher::new(&builtins, &words, &regexes).map_err(|(i, e)| {
            let path = regex_paths
                .get(i)
                .cloned()
                .unwrap_or_else(|| "masking".into());
            PolicyError::new(path, PolicyErrorKind::Regex(e))
        })?;
        let guardrails = Guardrails::new(&policy.guardrails)?;
        Ok(Self {
            inner: Arc::new(Inner {
                entities: table.entities,
                matcher,
                column_rules,
                field_rules,
                dob_columns: m
                    .date_of_birth_columns
                    .iter()
                    .map(|c| c.to_ascii_lowercase())
                    .collect(),
                max_cell_bytes: m.max_cell_bytes,
                guardrails,
            }),
        })
    }

    /// Decides, once per result set, what happens to each column: masked whole by a column
    /// rule, exempt, or scanned (with the birth-date and passport detectors switched on for
    /// columns named for them). A `Binary` or `Structured` column named for birth dates or
    /// passports is masked whole: its values cannot be read as dates or numbers here.
    ///
    /// Cost: proportional to columns x column patterns; no regex runs.
    pub fn plan(&self, columns: &[ColumnInfo<'_>]) -> ResultPlan {
        let inner = &*self.inner;
        let m = &inner.matcher;
        let plans = columns
            .iter()
            .map(|col| {
                let rule = inner
                    .column_rules
                    .iter()
                    .enumerate()
                    .find(|(_, r)| r.globs.iter().any(|g| g.matches(col.name(), col.table())));
                if let Some((i, r)) = rule {
                    return match r.action {
                        ColumnAction::Exempt => ColumnPlan::Skip,
                        ColumnAction::Mask => plan_whole(col, r.entity, Some(i)),
                    };
                }
                let name = col.name().to_ascii_lowercase();
                let dob = m
                    .id(EntityType::DateOfBirth)
                    .filter(|_| inner.dob_columns.contains(&name) || name.contains("birth"));
                let passport = m
                    .id(EntityType::UsPassport)
                    .filter(|_| name.contains("passport"));
                if matches!(col.kind(), ValueKind::Binary | ValueKind::Structured)
                    && let Some(id) = dob.or(passport)
                {
                    return plan_whole(col, id, None);
                }
                if col.kind() == ValueKind::Binary || m.is_empty() {
                    return ColumnPlan::Skip;
                }
                plan_scan(
                    col,
                    ColumnGates {
                        date_of_birth: dob.is_some(),
                        passport: passport.is_some(),
                    },
                )
            })
            .collect();
        ResultPlan { columns: plans }
    }

    /// A per-session masker: search caches, scratch buffers and the session's counts.
    pub fn masker(&self) -> CellMasker {
        CellMasker::new(self.clone())
    }

    /// The name of an entity of this policy (built-in, custom, or a column rule's label).
    /// `"?"` for an id from another policy.
    pub fn entity_name(&self, id: EntityId) -> &str {
        self.inner.entities.get(id.index()).map_or("?", |e| &e.name)
    }

    /// The id of the entity with this name, if the policy has one.
    pub fn entity_id(&self, name: &str) -> Option<EntityId> {
        self.inner
            .entities
            .iter()
            .position(|e| &*e.name == name)
            .map(|i| EntityId(i as u16))
    }

    /// How many entities the policy knows (ids are `0..entity_count()`).
    pub fn entity_count(&self) -> usize {
        self.inner.entities.len()
    }

    /// Approximate heap bytes held by the compiled policy: automata, rule tables, labels.
    pub fn memory_usage(&self) -> usize {
        let inner = &*self.inner;
        std::mem::size_of::<Inner>()
            + inner.matcher.memory_usage()
            + inner
                .entities
                .iter()
                .map(|e| e.name.len() + e.label.len() + 64)
                .sum::<usize>()
            + inner
                .column_rules
                .iter()
                .map(|r| r.globs.len() * 64 + std::mem::size_of::<ColumnRuleEntry>())
                .sum::<usize>()
            + inner
                .field_rules
                .iter()
                .map(|r| r.globs.len() * 64 + std::mem::size_of::<FieldRuleEntry>())
                .sum::<usize>()
            + inner.guardrails.memory_usage()
    }

    pub(crate) fn column_rule_transform(
        &self,
        rule: Option<usize>,
        entity: EntityId,
    ) -> &CompiledTransform {
        match rule.and_then(|r| self.inner.column_rules.get(r)) {
            Some(r) => &r.transform,
            None => &self.inner.entities[entity.index()].transform,
        }
    }
}

/// The entity a column or field rule labels and counts with (`name`, created unless the
/// policy has it), and its transform: the rule's own, else the entity's.
fn rule_entity(
    table: &mut EntityTable,
    name: &str,
    explicit: Option<CompiledTransform>,
    overrides: &HashMap<&str, CompiledTransform>,
    default: &CompiledTransform,
    path: &str,
) -> Result<(EntityId, CompiledTransform), PolicyError> {
    if let Some(&id) = table.by_name.get(name) {
        let t = explicit.unwrap_or_else(|| table.entities[id.index()].transform.clone());
        return Ok((id, t));
    }
    let t = explicit.unwrap_or_else(|| {
        overrides
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.clone())
    });
    let id = table.add(name, t.clone(), path)?;
    Ok((id, t))
}

impl Inner {
    /// The first field rule matching `path`: its index, action and entity.
    pub(crate) fn field_rule(&self, path: &FieldPath) -> Option<(usize, ColumnAction, EntityId)> {
        if self.field_rules.is_empty() || path.is_empty() {
            return None;
        }
        self.field_rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.globs.iter().any(|g| g.matches(path)))
            .map(|(i, r)| (i, r.action, r.entity))
    }
}
