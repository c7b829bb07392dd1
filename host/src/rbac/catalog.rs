//! What there is to give permissions on, derived from the resource types of core and of every
//! loaded plugin: the models (`file.filerepository`), their permissions
//! (`file.view_filerepository`), the built-in roles (`file.filerepository_owner`) and the default
//! access policy of each endpoint. Plugin authors write none of this: a plugin's REST names
//! (`repositories/file/file/`) name its models, as Pulp's model classes do (`FileRepository`).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::plugins::rest_names::{Collection, PluginNames, RestNames};

/// A kind of object that permissions are given on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A plugin's repositories.
    Repository,
    /// A plugin's remotes.
    Remote,
    /// A plugin's publications.
    Publication,
    /// A plugin's distributions.
    Distribution,
    /// `tasks/`
    Task,
    /// Content units of every type (only their labels are guarded by a permission of their
    /// own: Pulp's `core.manage_content_labels`).
    Content,
    /// `uploads/`
    Upload,
    /// `groups/`
    Group,
    /// `contentguards/core/rbac/`
    RbacContentGuard,
    /// The other content guards: `contentguards/core/<kind>/`.
    ContentGuard,
    /// `plugins/`: installing and removing plugins.
    Plugin,
    /// `upstream-pulps/`: servers whose distributions are replicated here.
    UpstreamPulp,
    /// A plugin's alternate content sources (`acs/<plugin>/<repository type>/`).
    AlternateContentSource,
}

/// A kind of content guard core has (`contentguards/core/<segment>/`), each its own model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardKind {
    /// `rbac`: a download role on the guard.
    Rbac,
    /// `content_redirect`: URLs signed with the guard's secret.
    ContentRedirect,
    /// `header`: a header and its value.
    Header,
    /// `x509`: a client certificate issued by the guard's authority.
    X509,
    /// `composite`: any of several guards.
    Composite,
}

impl GuardKind {
    /// Every kind, in the order `contentguards/` lists them.
    pub const ALL: [GuardKind; 5] = [
        GuardKind::Rbac,
        GuardKind::ContentRedirect,
        GuardKind::Header,
        GuardKind::X509,
        GuardKind::Composite,
    ];

    /// Its REST segment (`contentguards/core/<segment>/`), also stored in `content_guards.kind`.
    pub fn segment(self) -> &'static str {
        match self {
            GuardKind::Rbac => "rbac",
            GuardKind::ContentRedirect => "content_redirect",
            GuardKind::Header => "header",
            GuardKind::X509 => "x509",
            GuardKind::Composite => "composite",
        }
    }

    /// The kind whose segment is `segment`.
    pub fn from_segment(segment: &str) -> Option<GuardKind> {
        GuardKind::ALL
            .into_iter()
            .find(|kind| kind.segment() == segment)
    }

    /// Its permissions model, as Pulp names the model class (`core.<model>`).
    pub fn model(self) -> &'static str {
        match self {
            GuardKind::Rbac => "rbaccontentguard",
            GuardKind::ContentRedirect => "contentredirectcontentguard",
            GuardKind::Header => "headercontentguard",
            GuardKind::X509 => "x509certguard",
            GuardKind::Composite => "compositecontentguard",
        }
    }

    /// The access policy of its endpoint: `contentguards/core/rbac`.
    pub fn viewset(self) -> String {
        format!("contentguards/core/{}", self.segment())
    }
}

/// A model permissions name: `file` + `filerepository`, `core` + `task`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    /// The app label: the plugin's name, or `core`.
    pub app: String,
    /// The model's name, lower case without separators.
    pub name: String,
    /// What kind of object it is.
    pub kind: Kind,
}

impl Model {
    /// The model of one of a plugin's collections: its REST segment and the collection's kind,
    /// as Pulp names `FileRepository` `file.filerepository` and `PythonDistribution`
    /// `python.pythondistribution` (the repository's segment names the type: `python`, not the
    /// distribution's `pypi`).
    pub fn of_plugin(names: &PluginNames, collection: Collection) -> Model {
        let stem: String = names
            .repository
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let (suffix, kind) = match collection {
            Collection::Repositories => ("repository", Kind::Repository),
            Collection::Remotes => ("remote", Kind::Remote),
            Collection::Publications => ("publication", Kind::Publication),
            Collection::Distributions => ("distribution", Kind::Distribution),
        };
        Model {
            app: names.plugin.clone(),
            name: format!("{stem}{suffix}"),
            kind,
        }
    }

    /// The model of a plugin's alternate content sources, as pulp_file names
    /// `FileAlternateContentSource`: `file.filealternatecontentsource`.
    pub fn alternate_content_source(names: &PluginNames) -> Model {
        let repository = Model::of_plugin(names, Collection::Repositories);
        let stem = repository
            .name
            .strip_suffix("repository")
            .unwrap_or(&repository.name);
        Model {
            name: format!("{stem}alternatecontentsource"),
            kind: Kind::AlternateContentSource,
            ..repository
        }
    }

    /// A model of core.
    pub fn core(name: &str, kind: Kind) -> Model {
        Model {
            app: "core".into(),
            name: name.into(),
            kind,
        }
    }

    /// The permission to `action` objects of this model: `file.view_filerepository`.
    pub fn permission(&self, action: &str) -> String {
        format!("{}.{action}_{}", self.app, self.name)
    }

    /// The built-in role `suffix` of this model: `file.filerepository_owner`.
    pub fn role(&self, suffix: &str) -> String {
        format!("{}.{}_{suffix}", self.app, self.name)
    }

    /// Its permissions, each one of its built-in roles holds at least one of.
    pub fn permissions(&self) -> Vec<String> {
        let mut all: BTreeSet<String> = BTreeSet::new();
        for (_, permissions) in self.roles() {
            all.extend(permissions);
        }
        all.into_iter().collect()
    }

    /// Its built-in roles, by suffix, with their permissions (Pulp's `LOCKED_ROLES`).
    pub fn roles(&self) -> Vec<(&'static str, Vec<String>)> {
        let of = |actions: &[&str]| -> Vec<String> {
            actions
                .iter()
                .map(|action| self.permission(action))
                .collect()
        };
        if self.kind == Kind::Content {
            return vec![(
                "labeler",
                vec![format!("{}.manage_content_labels", self.app)],
            )];
        }
        let mut owner = match self.kind {
            Kind::Repository => of(&[
                "view",
                "change",
                "delete",
                "manage_roles",
                "modify",
                "repair",
                "sync",
            ]),
            Kind::Publication => of(&["view", "delete", "manage_roles"]),
            Kind::Remote
            | Kind::Distribution
            | Kind::Group
            | Kind::RbacContentGuard
            | Kind::ContentGuard => of(&["view", "change", "delete", "manage_roles"]),
            Kind::Task | Kind::Upload => of(&["view", "change", "delete"]),
            Kind::UpstreamPulp => of(&["view", "change", "delete", "replicate", "manage_roles"]),
            Kind::AlternateContentSource => {
                of(&["view", "change", "delete", "refresh", "manage_roles"])
            }
            Kind::Plugin | Kind::Content => Vec::new(),
        };
        if self.kind == Kind::Repository {
            owner.push(format!("{}.delete_{}_version", self.app, self.name));
        }
        let mut roles = Vec::new();
        match self.kind {
            // Tasks are created by the server for the user who asked for the work.
            Kind::Task => {}
            // Plugins are managed, not owned: one role holds every management permission.
            Kind::Plugin => {
                roles.push(("manager", of(&["add", "change", "delete"])));
                return roles;
            }
            _ => roles.push(("creator", of(&["add"]))),
        }
        roles.push(("owner", owner));
        if self.kind != Kind::Upload {
            roles.push(("viewer", of(&["view"])));
        }
        if self.kind == Kind::RbacContentGuard {
            roles.push(("downloader", of(&["download"])));
        }
        if self.kind == Kind::UpstreamPulp {
            // Pulp's: who may start replications of an upstream without changing it.
            roles.push(("user", of(&["view", "replicate"])));
        }
        roles
    }
}

/// Core's models.
pub fn core_models() -> Vec<Model> {
    let mut models = vec![
        Model::core("task", Kind::Task),
        Model::core("upload", Kind::Upload),
        Model::core("group", Kind::Group),
        Model::core("plugin", Kind::Plugin),
        Model::core("content", Kind::Content),
        Model::core("upstreampulp", Kind::UpstreamPulp),
    ];
    models.extend(GuardKind::ALL.into_iter().map(guard_model));
    models
}

/// The model of a kind of content guard: `core.rbaccontentguard`, `core.headercontentguard`.
pub fn guard_model(kind: GuardKind) -> Model {
    let permissions_kind = match kind {
        GuardKind::Rbac => Kind::RbacContentGuard,
        _ => Kind::ContentGuard,
    };
    Model::core(kind.model(), permissions_kind)
}

/// The models of core and of every plugin `names` knows.
pub fn models(names: &RestNames) -> Vec<Model> {
    let mut models = core_models();
    for plugin in names.all() {
        for collection in COLLECTIONS {
            models.push(Model::of_plugin(plugin, collection));
        }
        models.push(Model::alternate_content_source(plugin));
    }
    models
}

/// The collections every plugin with content types has.
pub const COLLECTIONS: [Collection; 4] = [
    Collection::Repositories,
    Collection::Remotes,
    Collection::Publications,
    Collection::Distributions,
];

/// A role the server defines and keeps (`locked`: users cannot change or delete it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltinRole {
    /// `file.filerepository_owner`
    pub name: String,
    /// What holding it means.
    pub description: String,
    /// Its permissions.
    pub permissions: Vec<String>,
}

/// The built-in roles of every model.
pub fn builtin_roles(names: &RestNames) -> Vec<BuiltinRole> {
    let mut roles = Vec::new();
    for model in models(names) {
        for (suffix, permissions) in model.roles() {
            let description = match suffix {
                "creator" => format!("Create {} objects.", model.name),
                "owner" => format!("All actions on a {}, roles on it included.", model.name),
                "viewer" => format!("See a {}.", model.name),
                "downloader" => "Download what a content guard protects.".into(),
                "labeler" => "Set and unset the labels of the content units one may see.".into(),
                _ => format!("Install, upgrade, disable and remove {}s.", model.name),
            };
            roles.push(BuiltinRole {
                name: model.role(suffix),
                description,
                permissions,
            });
        }
    }
    roles
}

/// Every permission there is (custom roles may hold only these).
pub fn permissions(names: &RestNames) -> BTreeSet<String> {
    models(names).iter().flat_map(Model::permissions).collect()
}

/// The default access policy of one endpoint (Pulp's `DEFAULT_ACCESS_POLICY` of a viewset).
#[derive(Clone, Debug, PartialEq)]
pub struct DefaultPolicy {
    /// `repositories/file/file`, `tasks`.
    pub viewset_name: String,
    /// The statements, as Pulp writes them.
    pub statements: Value,
    /// What happens when an object is created: its creator gets the owner role.
    pub creation_hooks: Value,
    /// Lists answer only the objects the caller may view (`view_<model>`): `None` for
    /// endpoints every authenticated user sees all of.
    pub queryset_scoping: Option<Value>,
}

/// A statement allowing `actions` to `principal` when every condition holds.
fn allow(actions: &[&str], principal: &str, conditions: &[String]) -> Value {
    let mut statement = json!({ "action": actions, "principal": principal, "effect": "allow" });
    match conditions {
        [] => {}
        [one] => statement["condition"] = json!(one),
        many => statement["condition"] = json!(many),
    }
    statement
}

/// `condition:permission`
fn condition(name: &str, permission: &str) -> String {
    format!("{name}:{permission}")
}

const OBJECT: &str = "has_model_or_domain_or_obj_perms";
const MODEL: &str = "has_model_or_domain_perms";

/// The default policy of a model's own endpoint: staff may do anything; an authenticated user
/// may list (answered only what they may view) and ask their permissions; each other action
/// needs its permission on the model or on the object. `references` are the conditions on the
/// objects a create or update names (the remote a repository syncs from), which hold when the
/// request names none.
fn object_policy(viewset_name: String, model: &Model, references: Vec<String>) -> DefaultPolicy {
    let object = |action: &str| vec![condition(OBJECT, &model.permission(action))];
    let mut create = vec![condition(MODEL, &model.permission("add"))];
    create.extend(references.iter().cloned());
    let mut change = object("change");
    change.extend(references);
    let mut statements = vec![
        allow(&["*"], "admin", &[]),
        allow(&["list", "my_permissions"], "authenticated", &[]),
        allow(&["create"], "authenticated", &create),
        allow(&["retrieve"], "authenticated", &object("view")),
        allow(&["destroy"], "authenticated", &object("delete")),
        allow(
            &["list_roles", "add_role", "remove_role"],
            "authenticated",
            &object("manage_roles"),
        ),
    ];
    if model.kind != Kind::Publication {
        statements.push(allow(
            &["update", "partial_update", "set_label", "unset_label"],
            "authenticated",
            &change,
        ));
    }
    DefaultPolicy {
        viewset_name,
        statements: Value::Array(statements),
        creation_hooks: json!([{
            "function": "add_roles_for_object_creator",
            "parameters": { "roles": model.role("owner") },
        }]),
        queryset_scoping: Some(json!({ "function": "scope_queryset" })),
    }
}

/// The policy of a plugin's alternate content sources (`acs/<plugin>/<repository type>`), as
/// pulp_file's: creating or changing one also needs a view of the remote it names, and
/// `refresh` (which queues downloads from it) is a permission of its own.
fn acs_policy(names: &PluginNames) -> DefaultPolicy {
    let model = Model::alternate_content_source(names);
    let remote = Model::of_plugin(names, Collection::Remotes);
    let view_remote = condition(
        "has_remote_param_model_or_domain_or_obj_perms",
        &remote.permission("view"),
    );
    let mut policy = object_policy(
        format!("acs/{}/{}", names.plugin, names.repository),
        &model,
        vec![view_remote],
    );
    if let Value::Array(statements) = &mut policy.statements {
        statements.push(allow(
            &["refresh"],
            "authenticated",
            &[condition(OBJECT, &model.permission("refresh"))],
        ));
    }
    policy
}

/// The default policies of a plugin's endpoints.
fn plugin_policies(names: &PluginNames) -> Vec<DefaultPolicy> {
    let model = |collection| Model::of_plugin(names, collection);
    let (repository, remote, publication, distribution) = (
        model(Collection::Repositories),
        model(Collection::Remotes),
        model(Collection::Publications),
        model(Collection::Distributions),
    );
    let viewset = |collection: Collection| {
        format!(
            "{}/{}/{}",
            collection.path(),
            names.plugin,
            names.segment(collection)
        )
    };
    let view_remote = condition(
        "has_remote_param_model_or_domain_or_obj_perms",
        &remote.permission("view"),
    );
    let view_repository_param = condition(
        "has_repo_or_repo_ver_param_model_or_domain_or_obj_perms",
        &repository.permission("view"),
    );
    let view_publication_param = condition(
        "has_publication_param_model_or_domain_or_obj_perms",
        &publication.permission("view"),
    );

    let mut repositories = object_policy(
        viewset(Collection::Repositories),
        &repository,
        vec![view_remote.clone()],
    );
    if let Value::Array(statements) = &mut repositories.statements {
        let on_repository = |action: &str| condition(OBJECT, &repository.permission(action));
        statements.push(allow(
            &["sync"],
            "authenticated",
            &[
                on_repository("sync"),
                on_repository("view"),
                view_remote.clone(),
            ],
        ));
        // `repair_metadata` rewrites units' metadata: pulp_python's policy puts it with modify.
        statements.push(allow(
            &["modify", "repair_metadata"],
            "authenticated",
            &[on_repository("modify"), on_repository("view")],
        ));
    }
    let on_parent =
        |permission: String| condition("has_repository_model_or_domain_or_obj_perms", &permission);
    let versions = DefaultPolicy {
        viewset_name: format!("{}/versions", viewset(Collection::Repositories)),
        statements: json!([
            allow(&["*"], "admin", &[]),
            allow(
                &["list", "retrieve"],
                "authenticated",
                &[on_parent(repository.permission("view"))]
            ),
            allow(
                &["destroy"],
                "authenticated",
                &[
                    on_parent(format!(
                        "{}.delete_{}_version",
                        repository.app, repository.name
                    )),
                    on_parent(repository.permission("view")),
                ]
            ),
            allow(
                &["repair"],
                "authenticated",
                &[
                    on_parent(repository.permission("repair")),
                    on_parent(repository.permission("view")),
                ]
            ),
        ]),
        creation_hooks: json!([]),
        queryset_scoping: None,
    };
    let mut policies = vec![
        repositories,
        versions,
        object_policy(viewset(Collection::Remotes), &remote, Vec::new()),
        object_policy(
            viewset(Collection::Publications),
            &publication,
            vec![view_repository_param.clone()],
        ),
        object_policy(
            viewset(Collection::Distributions),
            &distribution,
            vec![view_repository_param, view_publication_param],
        ),
    ];
    if let Some(push) = names.push_type() {
        policies.extend(push_repository_policies(names, push, &repository));
    }
    policies
}

/// The policies of a plugin's push repositories (`repositories/<plugin>/<push>/` and their
/// versions), as pulp_container's: their objects are seen and changed as the plugin's
/// repositories are (the same permissions), never created or deleted through REST (a push
/// creates one, its distribution's deletion deletes it), and their versions are only read.
fn push_repository_policies(
    names: &PluginNames,
    push: &str,
    repository: &Model,
) -> [DefaultPolicy; 2] {
    let viewset = format!("repositories/{}/{push}", names.plugin);
    let mut objects = object_policy(viewset.clone(), repository, Vec::new());
    if let Value::Array(statements) = &mut objects.statements {
        statements.retain(|statement| {
            !statement["action"]
                .as_array()
                .is_some_and(|actions| actions.iter().any(|a| a == "create" || a == "destroy"))
        });
    }
    let on_parent = condition(
        "has_repository_model_or_domain_or_obj_perms",
        &repository.permission("view"),
    );
    let versions = plain(
        &format!("{viewset}/versions"),
        vec![allow(&["list", "retrieve"], "authenticated", &[on_parent])],
    );
    [objects, versions]
}

/// A policy of statements only: no creation hooks, no scoping.
fn plain(viewset_name: &str, statements: Vec<Value>) -> DefaultPolicy {
    DefaultPolicy {
        viewset_name: viewset_name.into(),
        statements: Value::Array(statements),
        creation_hooks: json!([]),
        queryset_scoping: None,
    }
}

/// The default policies of core's endpoints.
fn core_policies() -> Vec<DefaultPolicy> {
    let admin = || allow(&["*"], "admin", &[]);
    let task = Model::core("task", Kind::Task);
    let upload = Model::core("upload", Kind::Upload);
    let group = Model::core("group", Kind::Group);
    let plugin = Model::core("plugin", Kind::Plugin);
    let upstream_pulp = Model::core("upstreampulp", Kind::UpstreamPulp);
    let on = |model: &Model, action: &str| vec![condition(OBJECT, &model.permission(action))];

    // Tasks are created by the server; their dispatcher gets the owner role when they are.
    let mut tasks = object_policy("tasks".into(), &task, Vec::new());
    tasks.statements = json!([
        admin(),
        allow(&["list", "purge"], "authenticated", &[]),
        allow(
            &["retrieve", "my_permissions"],
            "authenticated",
            &on(&task, "view")
        ),
        allow(&["destroy"], "authenticated", &on(&task, "delete")),
        allow(
            &["update", "partial_update"],
            "authenticated",
            &on(&task, "change")
        ),
    ]);
    let mut uploads = object_policy("uploads".into(), &upload, Vec::new());
    if let Value::Array(statements) = &mut uploads.statements {
        statements.push(allow(&["commit"], "authenticated", &on(&upload, "change")));
    }
    // As Pulp's: a replication creates and deletes repositories, remotes and distributions in
    // the upstream's name, so starting one is a permission of its own.
    let mut upstream_pulps = object_policy("upstream-pulps".into(), &upstream_pulp, Vec::new());
    if let Value::Array(statements) = &mut upstream_pulps.statements {
        statements.push(allow(
            &["replicate"],
            "authenticated",
            &on(&upstream_pulp, "replicate"),
        ));
    }
    let mut policies = vec![
        tasks,
        uploads,
        upstream_pulps,
        object_policy("groups".into(), &group, Vec::new()),
        plain(
            "groups/users",
            vec![
                admin(),
                allow(&["list"], "authenticated", &on(&group, "view")),
                allow(
                    &["create", "destroy"],
                    "authenticated",
                    &on(&group, "change"),
                ),
            ],
        ),
        plain(
            "roles",
            vec![admin(), allow(&["list", "retrieve"], "authenticated", &[])],
        ),
        // As Pulp's: anyone may list and cancel the groups they see (those with a task they
        // may see; the scoping is the tasks').
        DefaultPolicy {
            queryset_scoping: Some(json!({ "function": "scope_queryset" })),
            ..plain(
                "task-groups",
                vec![
                    admin(),
                    allow(
                        &["list", "retrieve", "partial_update"],
                        "authenticated",
                        &[],
                    ),
                ],
            )
        },
        // Exports write to, and imports read from, the server's disks: staff only.
        plain("exporters/core/pulp", vec![admin()]),
        plain("exporters/core/pulp/exports", vec![admin()]),
        plain("exporters/core/filesystem", vec![admin()]),
        plain("exporters/core/filesystem/exports", vec![admin()]),
        plain("importers/core/pulp", vec![admin()]),
        plain("importers/core/pulp/imports", vec![admin()]),
        plain("importers/core/pulp/import-check", vec![admin()]),
        plain(
            "workers",
            vec![admin(), allow(&["list", "retrieve"], "authenticated", &[])],
        ),
        plain(
            "access_policies",
            vec![admin(), allow(&["list", "retrieve"], "authenticated", &[])],
        ),
        // Maintenance of the whole server.
        plain("orphans/cleanup", vec![admin()]),
        plain("repositories/reclaim_space", vec![admin()]),
        plain("repair", vec![admin()]),
        plain(
            "artifacts",
            vec![
                admin(),
                allow(&["list", "retrieve", "create"], "authenticated", &[]),
            ],
        ),
        plain(
            "plugins",
            vec![
                admin(),
                allow(&["list", "retrieve"], "authenticated", &[]),
                allow(
                    &["create"],
                    "authenticated",
                    &[condition(MODEL, &plugin.permission("add"))],
                ),
                allow(
                    &["partial_update"],
                    "authenticated",
                    &[condition(MODEL, &plugin.permission("change"))],
                ),
                allow(
                    &["destroy"],
                    "authenticated",
                    &[condition(MODEL, &plugin.permission("delete"))],
                ),
            ],
        ),
        // Each kind's list is scoped by its own policy.
        plain(
            "contentguards",
            vec![admin(), allow(&["list"], "authenticated", &[])],
        ),
    ];
    policies.extend(GuardKind::ALL.into_iter().map(guard_policy));
    policies
}

/// The default policy of a kind of content guard: a model's own; signing a URL with a
/// `content_redirect` guard's secret needs `change` on it; the creator of an `rbac` guard may
/// download through it, as Pulp's creator is given the downloader role with the owner's.
fn guard_policy(kind: GuardKind) -> DefaultPolicy {
    let model = guard_model(kind);
    let mut policy = object_policy(kind.viewset(), &model, Vec::new());
    if kind == GuardKind::Rbac {
        policy.creation_hooks = json!([{
            "function": "add_roles_for_object_creator",
            "parameters": { "roles": [model.role("owner"), model.role("downloader")] },
        }]);
    }
    if kind == GuardKind::ContentRedirect
        && let Value::Array(statements) = &mut policy.statements
    {
        statements.push(allow(
            &["preauthenticate_url"],
            "authenticated",
            &[condition(OBJECT, &model.permission("change"))],
        ));
    }
    policy
}

/// The default policies of the content endpoints of a plugin: anyone authenticated may read
/// content; adding it to a repository needs `modify` on that repository.
fn content_policies(names: &PluginNames) -> Vec<DefaultPolicy> {
    let repository = Model::of_plugin(names, Collection::Repositories);
    let upload = Model::core("upload", Kind::Upload);
    names
        .content
        .iter()
        .map(|content| {
            plain(
                &format!("content/{}/{}", names.plugin, content.endpoint),
                vec![
                    allow(&["*"], "admin", &[]),
                    allow(&["list", "retrieve"], "authenticated", &[]),
                    allow(
                        &["create"],
                        "authenticated",
                        &[
                            condition(
                                "has_required_repo_perms_on_upload",
                                &repository.permission("modify"),
                            ),
                            condition(
                                "has_required_repo_perms_on_upload",
                                &repository.permission("view"),
                            ),
                            condition(
                                "has_upload_param_model_or_domain_or_obj_perms",
                                &upload.permission("change"),
                            ),
                        ],
                    ),
                    allow(
                        &["set_label", "unset_label"],
                        "authenticated",
                        &[condition(MODEL, "core.manage_content_labels")],
                    ),
                ],
            )
        })
        .collect()
}

/// The default access policy of every endpoint of core and of the plugins `names` knows.
pub fn default_policies(names: &RestNames) -> Vec<DefaultPolicy> {
    let mut policies = core_policies();
    for plugin in names.all() {
        policies.extend(plugin_policies(plugin));
        policies.extend(content_policies(plugin));
        policies.push(acs_policy(plugin));
    }
    policies
}

/// The conditions statements may name: Pulp's, as its built-in policies use them. Each takes a
/// permission after a colon.
pub const CONDITIONS: &[&str] = &[
    "has_model_perms",
    "has_model_or_domain_perms",
    "has_obj_perms",
    "has_model_or_obj_perms",
    "has_model_or_domain_or_obj_perms",
    "has_remote_param_model_or_domain_or_obj_perms",
    "has_repo_or_repo_ver_param_model_or_domain_or_obj_perms",
    "has_publication_param_model_or_domain_or_obj_perms",
    "has_upload_param_model_or_domain_or_obj_perms",
    "has_repository_model_or_domain_or_obj_perms",
    "has_repo_attr_model_or_domain_or_obj_perms",
    "has_required_repo_perms_on_upload",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn python_plugin() -> PluginNames {
        PluginNames {
            plugin: "python".into(),
            type_name: "package".into(),
            repository: "python".into(),
            remote: "python".into(),
            publication: "pypi".into(),
            distribution: "pypi".into(),
            push_repository: None,
            content: Vec::new(),
        }
    }

    #[test]
    fn models_are_named_after_the_repository_segment_as_pulp_names_its_classes() {
        let names = python_plugin();
        let distribution = Model::of_plugin(&names, Collection::Distributions);
        assert_eq!(
            distribution.permission("view"),
            "python.view_pythondistribution"
        );
        assert_eq!(
            distribution.role("owner"),
            "python.pythondistribution_owner"
        );
    }

    #[test]
    fn a_repository_owner_may_do_everything_pulp_gives_the_role() {
        let repository = Model::of_plugin(&python_plugin(), Collection::Repositories);
        let roles = repository.roles();
        let owner = &roles
            .iter()
            .find(|(suffix, _)| *suffix == "owner")
            .unwrap()
            .1;
        for permission in [
            "python.view_pythonrepository",
            "python.modify_pythonrepository",
            "python.sync_pythonrepository",
            "python.manage_roles_pythonrepository",
            "python.delete_pythonrepository_version",
        ] {
            assert!(owner.contains(&permission.to_string()), "{permission}");
        }
        let suffixes: Vec<_> = roles.iter().map(|(suffix, _)| *suffix).collect();
        assert_eq!(suffixes, ["creator", "owner", "viewer"]);
    }

    #[test]
    fn every_condition_of_the_default_policies_is_one_the_engine_knows() {
        let names = RestNames::default();
        let mut policies = default_policies(&names);
        policies.extend(plugin_policies(&python_plugin()));
        for policy in policies {
            for statement in policy.statements.as_array().unwrap() {
                let conditions = match &statement["condition"] {
                    Value::Null => Vec::new(),
                    Value::String(one) => vec![one.clone()],
                    many => serde_json::from_value(many.clone()).unwrap(),
                };
                for condition in conditions {
                    let name = condition.split(':').next().unwrap();
                    assert!(
                        CONDITIONS.contains(&name),
                        "{}: {condition}",
                        policy.viewset_name
                    );
                }
            }
        }
    }
}
