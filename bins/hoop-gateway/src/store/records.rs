//! Typed rows and the repository methods over them, written once for both
//! backends.

use super::{Row, Statement, Store, StoreError, Value};

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A registered agent. Only a hash of its key's secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    /// Generated id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `standard` or `embedded`.
    pub mode: String,
    /// SHA-256 of the key's secret, hex.
    pub key_hash: String,
    /// What the agent last reported about itself, a JSON object.
    pub metadata: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

impl AgentRecord {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.text(0)?,
            name: row.text(1)?,
            mode: row.text(2)?,
            key_hash: row.text(3)?,
            metadata: row.text(4)?,
            created_at: row.int(5)?,
        })
    }
}

/// A resource: a named service whose connections (roles) inherit its agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRecord {
    /// Generated id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Connection type of its roles.
    pub kind: String,
    /// Subtype of its roles.
    pub subtype: Option<String>,
    /// The agent serving it.
    pub agent_id: Option<String>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

impl ResourceRecord {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.text(0)?,
            name: row.text(1)?,
            kind: row.text(2)?,
            subtype: row.opt_text(3)?,
            agent_id: row.opt_text(4)?,
            created_at: row.int(5)?,
        })
    }
}

/// A stored connection. `secret` is the encrypted credential map; the rest
/// of the non-secret fields live in `attributes` as a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// Generated id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `database`, `application` or `custom`.
    pub kind: String,
    /// The protocol, absent for `custom`.
    pub subtype: Option<String>,
    /// The agent named on the connection itself.
    pub agent_id: Option<String>,
    /// The resource the connection belongs to.
    pub resource_name: Option<String>,
    /// Access modes, redaction, guardrails, reviewers, tags, command: JSON.
    pub attributes: String,
    /// The credential map, sealed with the gateway's secret key.
    pub secret: Vec<u8>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Last change, Unix seconds.
    pub updated_at: i64,
}

impl ConnectionRecord {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.text(0)?,
            name: row.text(1)?,
            kind: row.text(2)?,
            subtype: row.opt_text(3)?,
            agent_id: row.opt_text(4)?,
            resource_name: row.opt_text(5)?,
            attributes: row.text(6)?,
            secret: row.blob(7)?,
            created_at: row.int(8)?,
            updated_at: row.int(9)?,
        })
    }
}

/// A plugin's configuration for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfigRecord {
    /// The plugin's name.
    pub plugin: String,
    /// The connection's id.
    pub connection_id: String,
    /// The per-connection configuration, a JSON value.
    pub config: String,
}

/// One connection's entry in a plugin, read with the plugin's own
/// configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEntryRecord {
    /// The per-connection configuration, a JSON value.
    pub config: String,
    /// The plugin's global configuration (a JSON value), if set.
    pub plugin_config: Option<String>,
}

/// A change to one plugin of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginChange {
    /// The plugin's name.
    pub plugin: String,
    /// The new per-connection configuration (JSON), or `None` to turn the
    /// plugin off for the connection.
    pub config: Option<String>,
}

/// A person (or service account) using the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Generated id.
    pub id: String,
    /// Unique e-mail address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// `active` or `inactive`.
    pub status: String,
    /// Group names; `admin` makes an administrator.
    pub groups: Vec<String>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

impl UserRecord {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        let groups = serde_json::from_str(&row.text(4)?)
            .map_err(|_| StoreError::Corrupt("user groups are not a JSON list"))?;
        Ok(Self {
            id: row.text(0)?,
            email: row.text(1)?,
            name: row.text(2)?,
            status: row.text(3)?,
            groups,
            created_at: row.int(5)?,
        })
    }

    fn groups_json(&self) -> String {
        serde_json::Value::from(self.groups.clone()).to_string()
    }
}

/// An API token; only a hash of the token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Generated id.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// Whose it is.
    pub user_id: String,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

impl TokenRecord {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.text(0)?,
            name: row.text(1)?,
            user_id: row.text(2)?,
            token_hash: row.text(3)?,
            created_at: row.int(4)?,
        })
    }
}

fn insert_plugin_statement(record: &PluginConfigRecord) -> Statement {
    Statement::new(
        "INSERT INTO plugin_connections (plugin, connection_id, config) VALUES ($1, $2, $3)",
        vec![
            record.plugin.as_str().into(),
            record.connection_id.as_str().into(),
            record.config.as_str().into(),
        ],
    )
}

impl Store {
    // Agents.

    /// Adds an agent.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the name exists.
    pub async fn insert_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO agents (id, name, mode, key_hash, metadata, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                agent.id.as_str().into(),
                agent.name.as_str().into(),
                agent.mode.as_str().into(),
                agent.key_hash.as_str().into(),
                agent.metadata.as_str().into(),
                agent.created_at.into(),
            ],
        )
        .await
        .map(drop)
    }

    /// Every agent, by name.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn list_agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, name, mode, key_hash, metadata, created_at FROM agents ORDER BY name",
                vec![],
            )
            .await?;
        rows.iter().map(AgentRecord::from_row).collect()
    }

    /// The agent with this id or name.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn find_agent(&self, name_or_id: &str) -> Result<Option<AgentRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, name, mode, key_hash, metadata, created_at FROM agents \
                 WHERE id = $1 OR name = $1",
                vec![name_or_id.into()],
            )
            .await?;
        rows.first().map(AgentRecord::from_row).transpose()
    }

    /// Records what an agent reported about itself.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn set_agent_metadata(&self, id: &str, metadata: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE agents SET metadata = $2 WHERE id = $1",
            vec![id.into(), metadata.into()],
        )
        .await
        .map(drop)
    }

    /// Replaces an agent's key hash (used when `hoop up` re-keys its
    /// embedded agent on each start).
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn set_agent_key_hash(&self, id: &str, key_hash: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE agents SET key_hash = $2 WHERE id = $1",
            vec![id.into(), key_hash.into()],
        )
        .await
        .map(drop)
    }

    /// Removes an agent; false when there was none.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when connections or resources still name it.
    pub async fn delete_agent(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .execute("DELETE FROM agents WHERE id = $1", vec![id.into()])
            .await?
            > 0)
    }

    /// How many connections and resources name this agent directly.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn agent_references(&self, id: &str) -> Result<i64, StoreError> {
        let rows = self
            .query(
                "SELECT (SELECT COUNT(*) FROM connections WHERE agent_id = $1) \
                 + (SELECT COUNT(*) FROM resources WHERE agent_id = $1)",
                vec![id.into()],
            )
            .await?;
        rows.first().map_or(Ok(0), |row| row.int(0))
    }

    // Resources.

    /// Adds a resource.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the name exists.
    pub async fn insert_resource(&self, resource: &ResourceRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO resources (id, name, type, subtype, agent_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                resource.id.as_str().into(),
                resource.name.as_str().into(),
                resource.kind.as_str().into(),
                resource.subtype.clone().into(),
                resource.agent_id.clone().into(),
                resource.created_at.into(),
            ],
        )
        .await
        .map(drop)
    }

    /// Every resource, by name.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn list_resources(&self) -> Result<Vec<ResourceRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, name, type, subtype, agent_id, created_at FROM resources ORDER BY name",
                vec![],
            )
            .await?;
        rows.iter().map(ResourceRecord::from_row).collect()
    }

    /// The resource with this id or name.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn find_resource(
        &self,
        name_or_id: &str,
    ) -> Result<Option<ResourceRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, name, type, subtype, agent_id, created_at FROM resources \
                 WHERE id = $1 OR name = $1",
                vec![name_or_id.into()],
            )
            .await?;
        rows.first().map(ResourceRecord::from_row).transpose()
    }

    /// Removes a resource; false when there was none.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when connections still belong to it.
    pub async fn delete_resource(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .execute("DELETE FROM resources WHERE id = $1", vec![id.into()])
            .await?
            > 0)
    }

    // Connections.

    /// Adds a connection and its plugin configurations, all or nothing.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the name exists; nothing is written.
    pub async fn insert_connection(
        &self,
        connection: &ConnectionRecord,
        plugins: &[PluginConfigRecord],
    ) -> Result<(), StoreError> {
        let mut statements = vec![Statement::new(
            "INSERT INTO connections (id, name, type, subtype, agent_id, resource_name, \
             attributes, secret, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            connection_values(connection),
        )];
        statements.extend(plugins.iter().map(insert_plugin_statement));
        self.transaction(statements).await.map(drop)
    }

    /// Every connection, by name.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn list_connections(&self) -> Result<Vec<ConnectionRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, name, type, subtype, agent_id, resource_name, attributes, secret, \
                 created_at, updated_at FROM connections ORDER BY name",
                vec![],
            )
            .await?;
        rows.iter().map(ConnectionRecord::from_row).collect()
    }

    /// The connection with this id or name.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn find_connection(
        &self,
        name_or_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, name, type, subtype, agent_id, resource_name, attributes, secret, \
                 created_at, updated_at FROM connections WHERE id = $1 OR name = $1",
                vec![name_or_id.into()],
            )
            .await?;
        rows.first().map(ConnectionRecord::from_row).transpose()
    }

    /// Rewrites a connection (matched by id) and applies `plugins` to it, all
    /// or nothing; false when it is gone.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the new name is taken; nothing is written.
    pub async fn update_connection(
        &self,
        connection: &ConnectionRecord,
        plugins: &[PluginChange],
    ) -> Result<bool, StoreError> {
        let mut statements = vec![Statement::new(
            "UPDATE connections SET name = $2, type = $3, subtype = $4, agent_id = $5, \
             resource_name = $6, attributes = $7, secret = $8, created_at = $9, \
             updated_at = $10 WHERE id = $1",
            connection_values(connection),
        )];
        for change in plugins {
            statements.push(Statement::new(
                "DELETE FROM plugin_connections WHERE plugin = $1 AND connection_id = $2",
                vec![change.plugin.as_str().into(), connection.id.as_str().into()],
            ));
            if let Some(config) = &change.config {
                statements.push(insert_plugin_statement(&PluginConfigRecord {
                    plugin: change.plugin.clone(),
                    connection_id: connection.id.clone(),
                    config: config.clone(),
                }));
            }
        }
        let changed = self.transaction(statements).await?;
        Ok(changed.first().copied().unwrap_or(0) > 0)
    }

    /// Removes a connection and its plugin configurations; false when there
    /// was none.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn delete_connection(&self, id: &str) -> Result<bool, StoreError> {
        let changed = self
            .transaction(vec![
                Statement::new(
                    "DELETE FROM plugin_connections WHERE connection_id = $1",
                    vec![id.into()],
                ),
                Statement::new("DELETE FROM connections WHERE id = $1", vec![id.into()]),
            ])
            .await?;
        Ok(changed.get(1).copied().unwrap_or(0) > 0)
    }

    // Plugins.

    /// Every plugin configuration of every connection.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn list_plugin_connections(&self) -> Result<Vec<PluginConfigRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT plugin, connection_id, config FROM plugin_connections \
                 ORDER BY plugin, connection_id",
                vec![],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(PluginConfigRecord {
                    plugin: row.text(0)?,
                    connection_id: row.text(1)?,
                    config: row.text(2)?,
                })
            })
            .collect()
    }

    /// A plugin's global configuration (a JSON value), if set.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn plugin_config(&self, plugin: &str) -> Result<Option<String>, StoreError> {
        let rows = self
            .query(
                "SELECT config FROM plugins WHERE name = $1",
                vec![plugin.into()],
            )
            .await?;
        rows.first().map(|row| row.text(0)).transpose()
    }

    /// One connection's entry in a plugin and the plugin's global
    /// configuration, in one query (it runs at every session open); `None`
    /// when the plugin does not list the connection.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn plugin_entry(
        &self,
        plugin: &str,
        connection_id: &str,
    ) -> Result<Option<PluginEntryRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT pc.config, p.config FROM plugin_connections pc \
                 LEFT JOIN plugins p ON p.name = pc.plugin \
                 WHERE pc.plugin = $1 AND pc.connection_id = $2",
                vec![plugin.into(), connection_id.into()],
            )
            .await?;
        rows.first()
            .map(|row| {
                Ok(PluginEntryRecord {
                    config: row.text(0)?,
                    plugin_config: row.opt_text(1)?,
                })
            })
            .transpose()
    }

    /// Replaces a plugin's global configuration and its whole set of
    /// connections, all or nothing.
    ///
    /// # Errors
    ///
    /// Any backend error; nothing is written.
    pub async fn replace_plugin(
        &self,
        plugin: &str,
        config: &str,
        connections: &[PluginConfigRecord],
    ) -> Result<(), StoreError> {
        self.replace_plugin_and_attributes(plugin, config, connections, &[])
            .await
    }

    /// [`replace_plugin`](Self::replace_plugin), and in the same
    /// transaction rewrites the `attributes` of the connections in
    /// `attributes` (id, attributes JSON), so fields derived from the plugin
    /// follow it.
    ///
    /// # Errors
    ///
    /// Any backend error; nothing is written.
    pub async fn replace_plugin_and_attributes(
        &self,
        plugin: &str,
        config: &str,
        connections: &[PluginConfigRecord],
        attributes: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut statements = vec![
            Statement::new(
                "INSERT INTO plugins (name, config) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET config = excluded.config",
                vec![plugin.into(), config.into()],
            ),
            Statement::new(
                "DELETE FROM plugin_connections WHERE plugin = $1",
                vec![plugin.into()],
            ),
        ];
        statements.extend(connections.iter().map(insert_plugin_statement));
        let updated_at = now();
        statements.extend(attributes.iter().map(|(id, attributes)| {
            Statement::new(
                "UPDATE connections SET attributes = $2, updated_at = $3 WHERE id = $1",
                vec![
                    id.as_str().into(),
                    attributes.as_str().into(),
                    updated_at.into(),
                ],
            )
        }));
        self.transaction(statements).await.map(drop)
    }

    // Users and groups.

    /// Adds a user.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the e-mail exists.
    pub async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO users (id, email, name, status, groups, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                user.id.as_str().into(),
                user.email.as_str().into(),
                user.name.as_str().into(),
                user.status.as_str().into(),
                user.groups_json().into(),
                user.created_at.into(),
            ],
        )
        .await
        .map(drop)
    }

    /// Rewrites a user (matched by id); false when it is gone.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the new e-mail is taken.
    pub async fn update_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "UPDATE users SET email = $2, name = $3, status = $4, groups = $5 WHERE id = $1",
                vec![
                    user.id.as_str().into(),
                    user.email.as_str().into(),
                    user.name.as_str().into(),
                    user.status.as_str().into(),
                    user.groups_json().into(),
                ],
            )
            .await?;
        Ok(changed > 0)
    }

    /// Every user, by e-mail.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, email, name, status, groups, created_at FROM users ORDER BY email",
                vec![],
            )
            .await?;
        rows.iter().map(UserRecord::from_row).collect()
    }

    /// The user with this id or e-mail.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn find_user(&self, id_or_email: &str) -> Result<Option<UserRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, email, name, status, groups, created_at FROM users \
                 WHERE id = $1 OR email = $1",
                vec![id_or_email.into()],
            )
            .await?;
        rows.first().map(UserRecord::from_row).transpose()
    }

    /// Removes a user and their tokens; false when there was none.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        let changed = self
            .transaction(vec![
                Statement::new("DELETE FROM api_tokens WHERE user_id = $1", vec![id.into()]),
                Statement::new("DELETE FROM users WHERE id = $1", vec![id.into()]),
            ])
            .await?;
        Ok(changed.get(1).copied().unwrap_or(0) > 0)
    }

    /// Adds a group.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when it exists.
    pub async fn insert_group(&self, name: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO user_groups (name) VALUES ($1)",
            vec![name.into()],
        )
        .await
        .map(drop)
    }

    /// Every group name, sorted.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn list_groups(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .query("SELECT name FROM user_groups ORDER BY name", vec![])
            .await?;
        rows.iter().map(|row| row.text(0)).collect()
    }

    /// Removes a group; false when there was none.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn delete_group(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .execute("DELETE FROM user_groups WHERE name = $1", vec![name.into()])
            .await?
            > 0)
    }

    // API tokens.

    /// Adds a token.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO api_tokens (id, name, user_id, token_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
            vec![
                token.id.as_str().into(),
                token.name.as_str().into(),
                token.user_id.as_str().into(),
                token.token_hash.as_str().into(),
                token.created_at.into(),
            ],
        )
        .await
        .map(drop)
    }

    /// Every token (hashes only), by creation.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, name, user_id, token_hash, created_at FROM api_tokens \
                 ORDER BY created_at, id",
                vec![],
            )
            .await?;
        rows.iter().map(TokenRecord::from_row).collect()
    }

    /// Removes a token; false when there was none.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn delete_token(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .execute("DELETE FROM api_tokens WHERE id = $1", vec![id.into()])
            .await?
            > 0)
    }

    /// The user owning the token with this hash.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn user_for_token(&self, token_hash: &str) -> Result<Option<UserRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT u.id, u.email, u.name, u.status, u.groups, u.created_at \
                 FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
                vec![token_hash.into()],
            )
            .await?;
        rows.first().map(UserRecord::from_row).transpose()
    }
}

fn connection_values(connection: &ConnectionRecord) -> Vec<Value> {
    vec![
        connection.id.as_str().into(),
        connection.name.as_str().into(),
        connection.kind.as_str().into(),
        connection.subtype.clone().into(),
        connection.agent_id.clone().into(),
        connection.resource_name.clone().into(),
        connection.attributes.as_str().into(),
        connection.secret.clone().into(),
        connection.created_at.into(),
        connection.updated_at.into(),
    ]
}
