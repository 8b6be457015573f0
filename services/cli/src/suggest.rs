//! `switchyard mappings suggest`: proposes a mapping file from one sample payload — field-name
//! similarity plus value patterns, each candidate dry-run through the real transforms and checked
//! against the contract's rule — with a confidence and the evidence on every line. It writes a
//! proposal for a person to review (stdout or the file named with `--out`); it never deploys one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use switchyard_proto::contracts::{self, Contract, ErrorHandling, FieldRule, FieldType};
use switchyard_transform::mapping::{Context, Mapping, Registry};

/// `switchyard mappings …`
#[derive(Debug, Subcommand)]
pub enum MappingsCommand {
    /// Propose a mapping file from one sample payload, with a confidence per field (a proposal to
    /// review: it is written where you say, never deployed).
    Suggest(SuggestArgs),
}

/// `switchyard mappings suggest`
#[derive(Debug, Args)]
pub struct SuggestArgs {
    /// One sample payload (JSON) as the vendor sends it.
    pub sample: PathBuf,
    /// The contract object to produce: contact, lead, company, product, deal, order, invoice.
    #[arg(long)]
    pub object: String,
    /// The contract version (default: the newest).
    #[arg(long)]
    pub version: Option<u32>,
    /// The source kind the mapping is for.
    #[arg(long, default_value = "standard-webhooks")]
    pub source_kind: String,
    /// The event type (default: the sample's `type`, `eventType` or `topic`, else TODO).
    #[arg(long)]
    pub event_type: Option<String>,
    /// The mapping's name (default: <source-kind>-<object>).
    #[arg(long)]
    pub name: Option<String>,
    /// Write the proposal to this file instead of stdout; an existing file is kept.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Let --out replace an existing file.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Your own contracts (beside the built-in ones).
    #[arg(long)]
    pub contracts: Option<PathBuf>,
}

/// Candidates below this score are not proposed.
const THRESHOLD: f64 = 0.45;
/// How much the name counts against the value (the rest).
const NAME_WEIGHT: f64 = 0.65;
const VALUE_WEIGHT: f64 = 0.35;
/// What a path outside the record (in the envelope) costs.
const OUTSIDE_PENALTY: f64 = 0.1;
/// At most this many paths per field (the first non-empty one wins at run time).
const MAX_PATHS: usize = 3;
/// The region the dry run gives `e164` (transform's default, `dedupe.default_region`).
const DRY_RUN_REGION: phonenumber::country::Id = phonenumber::country::Id::US;

/// Vendor names for canonical fields — lower case, separators removed — and how sure each is.
const SYNONYMS: &[(&str, &[&str], f64)] = &[
    (
        "email",
        &[
            "emailaddress",
            "mail",
            "primaryemail",
            "contactemail",
            "workemail",
            "useremail",
            "emailid",
        ],
        0.9,
    ),
    (
        "phone",
        &[
            "phonenumber",
            "mobile",
            "mobilephone",
            "mobilenumber",
            "tel",
            "telephone",
            "telephonenumber",
            "cell",
            "cellphone",
            "primaryphone",
            "workphone",
            "contactphone",
            "phone1",
        ],
        0.9,
    ),
    ("phone", &["homephone", "businessphone", "phone2"], 0.8),
    (
        "first_name",
        &["firstname", "givenname", "fname", "forename"],
        0.9,
    ),
    ("first_name", &["first", "given"], 0.75),
    (
        "last_name",
        &["lastname", "familyname", "surname", "lname"],
        0.9,
    ),
    ("last_name", &["last", "family"], 0.75),
    (
        "company_name",
        &[
            "company",
            "organization",
            "organisation",
            "organizationname",
            "organisationname",
            "orgname",
            "accountname",
            "businessname",
            "employer",
        ],
        0.9,
    ),
    ("company_name", &["org", "account", "business"], 0.75),
    (
        "job_title",
        &["title", "jobrole", "position", "role", "jobposition"],
        0.8,
    ),
    (
        "country",
        &[
            "countrycode",
            "countryiso",
            "countryalpha2",
            "countryiso2",
            "iso2country",
        ],
        0.9,
    ),
    (
        "marketing_consent",
        &[
            "acceptsmarketing",
            "acceptsemailmarketing",
            "optin",
            "optedin",
            "emailoptin",
            "marketingoptin",
            "newsletter",
            "subscribed",
            "consent",
        ],
        0.9,
    ),
    (
        "consent_source",
        &["optinsource", "signupsource", "consentorigin"],
        0.9,
    ),
    ("lifecycle_stage", &["lifecycle"], 0.9),
    ("lifecycle_stage", &["stage"], 0.75),
    (
        "lead_source",
        &["source", "leadorigin", "origin", "utmsource", "channel"],
        0.8,
    ),
    ("status", &["state", "leadstatus", "orderstatus"], 0.8),
    (
        "name",
        &[
            "companyname",
            "organizationname",
            "organisationname",
            "accountname",
            "businessname",
            "legalname",
            "productname",
            "title",
            "dealname",
            "opportunityname",
        ],
        0.9,
    ),
    (
        "domain",
        &[
            "website",
            "websiteurl",
            "url",
            "homepage",
            "companydomain",
            "domainname",
        ],
        0.85,
    ),
    (
        "tax_id",
        &[
            "taxnumber",
            "vatnumber",
            "vatid",
            "taxregistrationnumber",
            "ein",
            "abn",
            "vat",
        ],
        0.9,
    ),
    ("industry", &["sector", "vertical"], 0.85),
    (
        "sku",
        &[
            "itemcode",
            "productcode",
            "partnumber",
            "itemnumber",
            "articlenumber",
            "stockcode",
        ],
        0.9,
    ),
    ("sku", &["code"], 0.7),
    (
        "description",
        &["desc", "details", "bodyhtml", "summary", "longdescription"],
        0.85,
    ),
    (
        "unit_price",
        &["price", "unitamount", "listprice", "saleprice", "rate"],
        0.85,
    ),
    (
        "active",
        &["isactive", "enabled", "available", "published"],
        0.85,
    ),
    ("tax_rate_bp", &["taxrate", "vatrate"], 0.8),
    (
        "stage",
        &["dealstage", "pipelinestage", "stagename", "status"],
        0.85,
    ),
    (
        "amount",
        &["value", "dealvalue", "dealamount", "total"],
        0.8,
    ),
    (
        "close_date",
        &["expectedclosedate", "closeat", "closedat", "expectedclose"],
        0.9,
    ),
    (
        "order_number",
        &[
            "orderno",
            "ordernum",
            "ordername",
            "orderreference",
            "orderid",
        ],
        0.9,
    ),
    ("order_number", &["number", "reference", "name"], 0.7),
    (
        "total",
        &[
            "amounttotal",
            "grandtotal",
            "totalprice",
            "totalamount",
            "ordertotal",
        ],
        0.9,
    ),
    ("total", &["amount"], 0.75),
    (
        "subtotal",
        &["subtotalprice", "amountsubtotal", "nettotal", "totalnet"],
        0.9,
    ),
    (
        "tax",
        &[
            "totaltax",
            "taxamount",
            "amounttax",
            "taxtotal",
            "vat",
            "totalvat",
        ],
        0.9,
    ),
    (
        "placed_at",
        &[
            "createdat",
            "orderdate",
            "processedat",
            "created",
            "dateplaced",
            "orderedat",
        ],
        0.8,
    ),
    (
        "line_items",
        &["items", "lines", "orderlines", "lineitem", "products"],
        0.85,
    ),
    (
        "invoice_number",
        &[
            "invoiceno",
            "invoicenum",
            "invoiceid",
            "invoiceref",
            "reference",
        ],
        0.85,
    ),
    ("invoice_number", &["number"], 0.75),
    (
        "amount_paid",
        &["paid", "paidamount", "totalpaid", "amountreceived"],
        0.9,
    ),
    (
        "issued_at",
        &["issuedate", "invoicedate", "dateissued", "issuedon"],
        0.85,
    ),
    (
        "issued_at",
        &["date", "created", "createdat", "effectiveat", "finalizedat"],
        0.7,
    ),
    ("due_at", &["duedate", "due", "paymentdue", "datedue"], 0.9),
];

/// Keys that usually hold a person's whole name: split for first_name / last_name.
const FULL_NAMES: &[&str] = &[
    "name",
    "fullname",
    "displayname",
    "contactname",
    "customername",
    "personname",
    "billingname",
];
const FULL_NAME_SCORE: f64 = 0.7;
/// Shared words count for at most this much of an exact match.
const OVERLAP_FACTOR: f64 = 0.7;

/// Tokens that say little on their own (`id`, `name`, `code`…): they count for less.
const GENERIC_TOKENS: &[&str] = &[
    "id", "name", "number", "no", "num", "code", "at", "on", "date", "time", "utc", "value",
    "address", "is", "has", "type", "info", "data", "the", "of",
];

/// Envelope keys the record is usually wrapped in (`data.object` for Stripe).
const WRAPPERS: &[&str] = &[
    "data", "object", "resource", "record", "payload", "body", "entity",
];

/// Other names vendors give each contract object (for the record's envelope and its id).
fn object_names(object: &str) -> &'static [&'static str] {
    match object {
        "contact" => &[
            "contact",
            "customer",
            "person",
            "subscriber",
            "member",
            "user",
            "profile",
        ],
        "lead" => &["lead", "prospect"],
        "company" => &["company", "account", "organization", "organisation"],
        "product" => &["product", "item", "variant"],
        "deal" => &["deal", "opportunity"],
        "order" => &["order"],
        "invoice" => &["invoice", "bill"],
        _ => &[],
    }
}

/// Who the proposal is for.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub name: String,
    pub source_kind: String,
    /// From `--event-type`; otherwise taken from the sample.
    pub event_type: Option<String>,
    /// How the sample is named in the header.
    pub sample_label: String,
}

/// One guess: where a value comes from, how to clean it, and how sure the guess is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pick {
    pub paths: Vec<String>,
    pub transforms: Vec<&'static str>,
    /// Sub-fields of an object built from several paths (money); `paths` then names the amount.
    pub parts: Vec<Part>,
    pub confidence: f64,
    pub why: String,
}

/// One sub-field of a built object (`minor_units`, `currency`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Part {
    pub name: &'static str,
    pub path: String,
    pub transforms: Vec<&'static str>,
}

/// A field spec as JSON: paths and transforms, or an object of parts.
fn spec_json(paths: &[String], transforms: &[&str], parts: &[Part]) -> Value {
    if parts.is_empty() {
        json!({ "paths": paths, "transforms": transforms })
    } else {
        let object: Map<String, Value> = parts
            .iter()
            .map(|p| {
                (
                    p.name.to_owned(),
                    json!({ "paths": [p.path], "transforms": p.transforms }),
                )
            })
            .collect();
        json!({ "object": object })
    }
}

/// A contract field the sample gave no good candidate for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Missing {
    pub field: String,
    pub required: bool,
    pub default: Option<Value>,
    /// The closest rejected candidate, or why the field cannot be mapped yet.
    pub hint: Option<String>,
}

/// A proposed mapping, before rendering.
#[derive(Debug, Clone)]
pub(crate) struct Proposal {
    pub name: String,
    pub source_kind: String,
    pub event_type: String,
    /// Where the event type came from (a comment).
    pub event_type_origin: Option<String>,
    pub contract: String,
    pub sample_label: String,
    /// The record's path in the payload (`data.object`; empty: the whole payload).
    pub root: String,
    pub record_id: Option<Pick>,
    pub occurred_at: Option<Pick>,
    /// Why no occurred_at was proposed, if a time-like field was seen.
    pub occurred_at_hint: Option<String>,
    pub fields: BTreeMap<String, Pick>,
    pub missing: Vec<Missing>,
}

/// Runs `switchyard mappings …`.
pub fn run(command: MappingsCommand) -> anyhow::Result<()> {
    let MappingsCommand::Suggest(args) = command;
    let loaded = contracts::load(args.contracts.as_deref())?;
    let contract = pick_contract(&loaded, &args.object, args.version)?;
    let text = std::fs::read_to_string(&args.sample)
        .with_context(|| format!("cannot read {}", args.sample.display()))?;
    let sample: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.sample.display()))?;
    if let Some(out) = &args.out
        && out.exists()
        && !args.force
    {
        bail!("{} exists; pass --force to replace it", out.display());
    }
    let options = Options {
        name: args
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", args.source_kind, contract.object)),
        source_kind: args.source_kind.clone(),
        event_type: args.event_type.clone(),
        sample_label: args.sample.display().to_string(),
    };
    let checker = Checker::new(&contract.object);
    let proposal = suggest(&sample, contract, &options, &checker);
    let mut yaml = render(&proposal);
    // The proposal must load as a mapping in the product itself; a failure is a bug here.
    let mapping = validate(&yaml, &proposal.name, &loaded)
        .context("the proposal does not load as a mapping (a bug in `mappings suggest`)")?;
    let problems = dry_run(&mapping, contract, &sample, &checker.ctx);
    yaml.push_str(&dry_run_comment(&proposal, contract, &problems));
    match &args.out {
        Some(out) => write_new(out, &yaml, args.force)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(yaml.as_bytes())?;
            stdout.flush()?;
        }
    }
    let mut summary = summary(&proposal, contract, &problems);
    let replaces_built_in = Registry::load(None, &loaded)
        .is_ok_and(|built_in| built_in.all().iter().any(|m| m.name == proposal.name));
    if replaces_built_in {
        let _ = writeln!(
            summary,
            "note: {} is the name of a built-in mapping; in transform.mappings_dir this file would replace it",
            proposal.name
        );
    }
    if let Some(out) = &args.out {
        let _ = writeln!(
            summary,
            "wrote the proposal to {} (nothing deployed: review it, then copy it into transform.mappings_dir)",
            out.display()
        );
    }
    let _ = std::io::stderr().lock().write_all(summary.as_bytes());
    Ok(())
}

/// The contract for `object` at `version` (the newest when none is given).
fn pick_contract<'a>(
    loaded: &'a [Contract],
    object: &str,
    version: Option<u32>,
) -> anyhow::Result<&'a Contract> {
    let mut versions: Vec<&Contract> = loaded.iter().filter(|c| c.object == object).collect();
    versions.sort_by_key(|c| c.version);
    if versions.is_empty() {
        let mut known: Vec<&str> = loaded.iter().map(|c| c.object.as_str()).collect();
        known.sort_unstable();
        known.dedup();
        bail!(
            "unknown object {object:?}: the contracts define {}",
            known.join(", ")
        );
    }
    match version {
        None => versions
            .last()
            .copied()
            .ok_or_else(|| anyhow::anyhow!("no contract for {object}")),
        Some(v) => versions
            .iter()
            .find(|c| c.version == v)
            .copied()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{object} has no version {v} (known: {})",
                    versions
                        .iter()
                        .map(|c| format!("v{}", c.version))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
    }
}

/// Writes `text` to `path`, never over an existing file unless `force`.
fn write_new(path: &Path, text: &str, force: bool) -> anyhow::Result<()> {
    let opened = if force {
        std::fs::File::create(path)
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
    };
    let mut file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} exists; pass --force to replace it", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
    };
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Loads the proposal the way transform does (the `Registry`, against the contracts) from a
/// scratch directory, and returns it.
fn validate(yaml: &str, name: &str, loaded: &[Contract]) -> anyhow::Result<Mapping> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir =
        std::env::temp_dir().join(format!("switchyard-suggest-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let loaded = std::fs::write(dir.join("proposal.yaml"), yaml)
        .map_err(anyhow::Error::from)
        .and_then(|()| Registry::load(Some(&dir), loaded).map_err(anyhow::Error::from));
    let _ = std::fs::remove_dir_all(&dir);
    loaded?
        .all()
        .iter()
        .rev()
        .find(|m| m.name == name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("mapping {name} is missing after loading"))
}

/// Applies the loaded proposal to the sample and checks the record against the contract: the
/// problems, each naming its field.
fn dry_run(mapping: &Mapping, contract: &Contract, sample: &Value, ctx: &Context) -> Vec<String> {
    let (mapped, mut problems) = mapping.apply_all(sample, ctx);
    let mut record = mapped.record;
    if let Err(violations) = contract.apply(&mut record) {
        problems.extend(violations);
    }
    problems
}

/// What the mapping language of this build can do beyond paths and the basic transforms; found
/// by trying it, so proposals use only what transform understands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Features {
    /// `date`: a date-time to its UTC day.
    pub date: bool,
    /// `integer`: text holding a whole number to an integer.
    pub integer: bool,
    /// `xero_date`: `/Date(ms+0000)/` to RFC 3339.
    pub xero_date: bool,
    /// `object:` sub-fields with the `minor_units` transform: money from an amount and a currency.
    pub money: bool,
}

/// Evaluates values with the real transforms and contract rules.
#[derive(Debug)]
pub(crate) struct Checker {
    ctx: Context,
    object: String,
    pub features: Features,
}

impl Checker {
    pub(crate) fn new(object: &str) -> Self {
        let mut checker = Self {
            ctx: Context::new(DRY_RUN_REGION),
            object: object.to_owned(),
            features: Features::default(),
        };
        let yields = |value: Value, transform: &str, expected: Value| {
            checker
                .transform(&value, &[transform])
                .is_ok_and(|out| out == Some(expected))
        };
        let features = Features {
            date: yields(
                json!("2026-01-02T23:30:00-02:00"),
                "date",
                json!("2026-01-03"),
            ),
            integer: yields(json!("42"), "integer", json!(42)),
            xero_date: checker
                .transform(&json!("/Date(1488391422280+0000)/"), &["xero_date"])
                .is_ok_and(|out| out.is_some_and(|v| v.is_string())),
            money: checker
                .resolve(
                    &json!({ "object": {
                        "minor_units": { "paths": ["a"], "transforms": ["minor_units"] },
                        "currency": { "paths": ["c"] },
                    }}),
                    &json!({ "a": "19.99", "c": "EUR" }),
                )
                .is_ok_and(|out| out == Some(json!({ "minor_units": 1999, "currency": "EUR" }))),
        };
        checker.features = features;
        checker
    }

    /// A field spec (as JSON) resolved against `payload`, as a mapping would do it.
    fn resolve(&self, spec: &Value, payload: &Value) -> Result<Option<Value>, String> {
        let probe: Mapping = serde_json::from_value(json!({
            "name": "probe",
            "source_kind": "probe",
            "event_types": ["probe"],
            "contract": "probe/v1",
            "record_id": { "value": "probe" },
            "fields": { "v": spec },
        }))
        .map_err(|e| e.to_string())?;
        let (mut mapped, problems) = probe.apply_all(payload, &self.ctx);
        match problems.into_iter().next() {
            Some(problem) => Err(problem.replace("probe.v: ", "")),
            None => Ok(mapped.record.remove("v")),
        }
    }

    /// `value` through `transforms`.
    fn transform(&self, value: &Value, transforms: &[&str]) -> Result<Option<Value>, String> {
        self.resolve(
            &json!({ "paths": ["v"], "transforms": transforms }),
            &json!({ "v": value }),
        )
        // Without the value: the proposal may be committed, and samples hold personal data.
        .map_err(|problem| problem.replace(&value.to_string(), "the value"))
    }

    /// Whether `value` satisfies `rule` (as field `name` of the object).
    fn satisfies(&self, name: &str, rule: &FieldRule, value: Value) -> Result<(), String> {
        let contract = Contract {
            object: self.object.clone(),
            version: 1,
            purpose: String::new(),
            system_of_record: String::new(),
            owner: String::new(),
            change_approval: String::new(),
            unique_key: Vec::new(),
            matching: String::new(),
            fields: BTreeMap::from([(
                name.to_owned(),
                FieldRule {
                    required: false,
                    default: None,
                    ..rule.clone()
                },
            )]),
            write_rules: BTreeMap::new(),
            error_handling: ErrorHandling {
                on_violation: "dead_letter".to_owned(),
                notes: None,
            },
            samples: Vec::new(),
        };
        let shown = value.to_string();
        let mut object = Map::from_iter([(name.to_owned(), value)]);
        contract.apply(&mut object).map_err(|problems| {
            // Without the value: the proposal may be committed, and samples hold personal data.
            problems
                .join("; ")
                .replace(&format!("{}.{name}: ", self.object), "")
                .replace(&shown, "the value")
        })
    }

    /// The value through the transforms, then the field's rule: `Err` says what breaks.
    fn dry_run(
        &self,
        name: &str,
        rule: &FieldRule,
        value: &Value,
        transforms: &[&str],
    ) -> Result<(), String> {
        match self.transform(value, transforms) {
            Ok(Some(out)) => self
                .satisfies(name, rule, out)
                .map_err(|problem| format!("the contract says: {problem}")),
            Ok(None) => Ok(()),
            Err(problem) => Err(format!("the transforms fail: {problem}")),
        }
    }

    fn is_country(&self, s: &str) -> bool {
        let s = s.trim();
        s.len() == 2
            && s.chars().all(|c| c.is_ascii_alphabetic())
            && self
                .satisfies(
                    "c",
                    &rule(FieldType::Country),
                    json!(s.to_ascii_uppercase()),
                )
                .is_ok()
    }

    fn is_currency(&self, s: &str) -> bool {
        let s = s.trim();
        s.len() == 3
            && s.chars().all(|c| c.is_ascii_alphabetic())
            && self
                .satisfies(
                    "c",
                    &rule(FieldType::Money),
                    json!({ "minor_units": 0, "currency": s.to_ascii_uppercase() }),
                )
                .is_ok()
    }

    /// Whether `datetime_utc` reads the text.
    fn is_datetime(&self, s: &str) -> bool {
        !s.trim().is_empty()
            && self
                .transform(&json!(s), &["datetime_utc"])
                .is_ok_and(|v| v.is_some())
    }
}

fn rule(kind: FieldType) -> FieldRule {
    FieldRule {
        kind,
        required: false,
        values: Vec::new(),
        max_length: None,
        min: None,
        max: None,
        default: None,
        description: None,
    }
}

/// One node of the sample: its mapping path, the names along it, and its value.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub path: String,
    /// Key names along the path (array indices left out; `data[merges][FNAME]` split too).
    pub names: Vec<String>,
    pub value: Value,
}

impl Node {
    fn depth(&self) -> usize {
        self.path.split('.').count()
    }

    fn parent(&self) -> &str {
        self.path.rsplit_once('.').map_or("", |(parent, _)| parent)
    }
}

/// Every node under the root (objects and lists too), by dotted path; keys with a dot in them
/// cannot be addressed by a mapping path and are left out.
pub(crate) fn flatten(sample: &Value) -> Vec<Node> {
    fn walk(value: &Value, path: &str, names: &[String], out: &mut Vec<Node>) {
        let children: Vec<(String, &Value, bool)> = match value {
            Value::Object(map) => map
                .iter()
                .filter(|(k, _)| !k.contains('.') && !k.is_empty())
                .map(|(k, v)| (k.clone(), v, true))
                .collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v, false))
                .collect(),
            _ => return,
        };
        for (key, child, named) in children {
            let child_path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let mut child_names = names.to_vec();
            if named {
                child_names.extend(
                    key.split(['[', ']'])
                        .filter(|s| !s.is_empty() && !s.bytes().all(|b| b.is_ascii_digit()))
                        .map(str::to_owned),
                );
            }
            out.push(Node {
                path: child_path.clone(),
                names: child_names.clone(),
                value: child.clone(),
            });
            walk(child, &child_path, &child_names, out);
        }
    }
    let mut out = Vec::new();
    walk(sample, "", &[], &mut out);
    out
}

/// A name split into lower-case words: snake, kebab, camel and Pascal case, acronyms, digits.
pub(crate) fn tokens(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if !current.is_empty() && i > 0 {
            let prev = chars[i - 1];
            let next = chars.get(i + 1);
            let boundary = (prev.is_lowercase() && c.is_uppercase())
                || (prev.is_alphabetic() != c.is_alphabetic())
                || (prev.is_uppercase()
                    && c.is_uppercase()
                    && next.is_some_and(|n| n.is_lowercase()));
            if boundary {
                out.push(std::mem::take(&mut current));
            }
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn squash(name: &str) -> String {
    tokens(name).concat()
}

/// How well a path's names match a field's name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NameMatch {
    pub score: f64,
    pub why: String,
    /// Take the first or last name out of a full name.
    pub split: Option<Split>,
}

/// Which part of a full name a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    First,
    Last,
}

impl NameMatch {
    fn none() -> Self {
        Self {
            score: 0.0,
            why: "no name match".to_owned(),
            split: None,
        }
    }
}

fn synonym(field: &str, squashed: &str) -> Option<f64> {
    SYNONYMS
        .iter()
        .filter(|(f, aliases, _)| *f == field && aliases.contains(&squashed))
        .map(|(_, _, score)| *score)
        .reduce(f64::max)
}

fn weight(token: &str) -> f64 {
    if GENERIC_TOKENS.contains(&token) || token.bytes().all(|b| b.is_ascii_digit()) {
        0.3
    } else {
        1.0
    }
}

/// Weighted Dice overlap of two token sets, and the shared words; `None` when only generic
/// words (`id`, `name`…) are shared.
fn overlap(a: &[String], b: &[String]) -> Option<(f64, Vec<String>)> {
    let mut a: Vec<&String> = a.iter().collect();
    let mut b: Vec<&String> = b.iter().collect();
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    let shared: Vec<String> = a
        .iter()
        .filter(|t| b.contains(t))
        .map(|t| (*t).clone())
        .collect();
    if !shared.iter().any(|t| weight(t) >= 1.0) {
        return None;
    }
    let sum = |ts: &[&String]| ts.iter().map(|t| weight(t)).sum::<f64>();
    let both = shared.iter().map(|t| weight(t)).sum::<f64>();
    Some((2.0 * both / (sum(&a) + sum(&b)), shared))
}

/// Scores the names along a path against a contract field: exact (1.0), a synonym, a full name
/// to split, or shared words; the key itself first, then the key with its parent
/// (`company.name` for `company_name`), which counts for 90 %.
pub(crate) fn name_match(field: &str, names: &[String]) -> NameMatch {
    let Some(key) = names.last() else {
        return NameMatch::none();
    };
    let field_tokens = tokens(field);
    let field_squashed = field_tokens.concat();
    let mut best = NameMatch::none();
    let mut consider = |m: NameMatch| {
        if m.score > best.score {
            best = m;
        }
    };
    let mut forms = vec![(key.clone(), 1.0)];
    if names.len() >= 2 {
        forms.push((format!("{}.{key}", names[names.len() - 2]), 0.9));
    }
    for (shown, factor) in forms {
        let toks: Vec<String> = shown.split('.').flat_map(tokens).collect();
        let squashed = toks.concat();
        if squashed == field_squashed {
            consider(NameMatch {
                score: factor,
                why: format!("name {shown:?} = {field}"),
                split: None,
            });
        }
        if let Some(score) = synonym(field, &squashed) {
            consider(NameMatch {
                score: score * factor,
                why: format!("name {shown:?} ~ {field}"),
                split: None,
            });
        }
        if factor >= 1.0 && FULL_NAMES.contains(&squashed.as_str()) {
            let split = match field {
                "first_name" => Some(Split::First),
                "last_name" => Some(Split::Last),
                _ => None,
            };
            if split.is_some() {
                consider(NameMatch {
                    score: FULL_NAME_SCORE,
                    why: format!("name {shown:?} is a full name (split at the last space)"),
                    split,
                });
            }
        }
        if let Some((dice, shared)) = overlap(&field_tokens, &toks) {
            consider(NameMatch {
                score: OVERLAP_FACTOR * dice * factor,
                why: format!("name {shown:?} shares {:?} with {field}", shared.join(" ")),
                split: None,
            });
        }
    }
    best
}

/// What a contract field expects, for the value checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Email,
    /// A phone type, or a string field named like a phone (contact.phone).
    Phone,
    Country,
    Date,
    Datetime,
    Bool,
    Integer,
    Money,
    Enum,
    List,
}

fn kind_of(field: &str, rule: &FieldRule) -> Kind {
    match rule.kind {
        FieldType::String
            if tokens(field)
                .iter()
                .any(|t| matches!(t.as_str(), "phone" | "mobile" | "tel" | "cell" | "fax")) =>
        {
            Kind::Phone
        }
        FieldType::String => Kind::Text,
        FieldType::Email => Kind::Email,
        FieldType::Phone => Kind::Phone,
        FieldType::Enum => Kind::Enum,
        FieldType::Bool => Kind::Bool,
        FieldType::Integer => Kind::Integer,
        FieldType::Money => Kind::Money,
        FieldType::Country => Kind::Country,
        FieldType::Date => Kind::Date,
        FieldType::Datetime => Kind::Datetime,
        FieldType::List => Kind::List,
    }
}

impl Kind {
    /// Whether a node of this value can be a candidate at all.
    fn accepts(self, value: &Value) -> bool {
        match self {
            Kind::Money => value.is_object(),
            Kind::List => value.is_array(),
            _ => !value.is_object() && !value.is_array(),
        }
    }
}

/// What the value says about a candidate: -1 (contradicts) … 1 (fits), why, and the transforms
/// that make it canonical.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Evidence {
    pub score: f64,
    pub why: String,
    pub transforms: Vec<&'static str>,
}

fn ev(score: f64, why: impl Into<String>, transforms: &[&'static str]) -> Evidence {
    Evidence {
        score,
        why: why.into(),
        transforms: transforms.to_vec(),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// The number of digits when the text looks like a phone number (7–15 digits, only digits,
/// spaces, `+`, `-`, `.` and parentheses; not a date or a decimal).
pub(crate) fn phone_digits(s: &str) -> Option<usize> {
    let s = s.trim();
    let allowed = s
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.'));
    let plus_ok = !s.contains('+') || (s.starts_with('+') && s.matches('+').count() == 1);
    let decimal = s.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    });
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (allowed && plus_ok && !decimal && !is_date(s) && (7..=15).contains(&digits)).then_some(digits)
}

pub(crate) fn is_date(s: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), format).is_ok()
}

/// `unix_seconds` or `unix_millis` when the value is a plausible unix time (2000–2100).
pub(crate) fn unix_transform(value: &Value) -> Option<&'static str> {
    let n = value.as_i64().or_else(|| {
        let s = value.as_str()?.trim();
        (s.len() >= 9 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    })?;
    const FROM: i64 = 946_684_800; // 2000-01-01
    const TO: i64 = 4_102_444_800; // 2100-01-01
    if (FROM..=TO).contains(&n) {
        Some("unix_seconds")
    } else if (FROM * 1000..=TO * 1000).contains(&n) {
        Some("unix_millis")
    } else {
        None
    }
}

fn bool_text(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no"
    )
}

/// A short, non-personal value for a comment (codes, enum values); never emails or names.
fn code(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 24 {
        format!(
            "{:?}",
            format!("{}…", s.chars().take(24).collect::<String>())
        )
    } else {
        format!("{s:?}")
    }
}

/// The value evidence for a candidate of `kind` (before the dry run).
pub(crate) fn evidence(
    kind: Kind,
    field: &str,
    rule: &FieldRule,
    value: &Value,
    split: Option<Split>,
    checker: &Checker,
) -> Evidence {
    let text = value.as_str().map(str::trim);
    if is_empty(value) {
        let transforms: &[&'static str] = match (kind, split) {
            (_, Some(Split::First)) => &["trim", "first_name"],
            (_, Some(Split::Last)) => &["trim", "last_name"],
            (Kind::Email, _) => &["trim", "lowercase"],
            (Kind::Phone, _) => &["trim", "e164"],
            (Kind::Country, _) => &["trim", "uppercase"],
            (Kind::Text | Kind::Date, _) => &["trim"],
            (Kind::Enum, _) => &["trim", "lowercase"],
            _ => &[],
        };
        return ev(0.0, "no value in the sample to check", transforms);
    }
    match kind {
        Kind::Email => match text {
            Some(s) if contracts::is_email(s) => {
                ev(1.0, "value looks like an email", &["trim", "lowercase"])
            }
            _ => ev(-1.0, "value is not an email", &["trim", "lowercase"]),
        },
        Kind::Phone => match (text, value) {
            (Some(s), _) => match phone_digits(s) {
                Some(n) => ev(
                    1.0,
                    format!("value looks like a phone number ({n} digits)"),
                    &["trim", "e164"],
                ),
                None => ev(-1.0, "value is not a phone number", &["trim", "e164"]),
            },
            (None, Value::Number(n)) if phone_digits(&n.to_string()).is_some() => ev(
                0.3,
                "value is a number with a phone's digit count",
                &["to_string", "e164"],
            ),
            _ => ev(-1.0, "value is not a phone number", &["trim", "e164"]),
        },
        Kind::Country => match text {
            Some(s) if checker.is_country(s) => ev(
                1.0,
                format!("value {} is an ISO 3166-1 alpha-2 code", code(s)),
                &["trim", "uppercase"],
            ),
            Some(s)
                if s.chars().count() > 3 && s.chars().all(|c| c.is_alphabetic() || c == ' ') =>
            {
                ev(
                    -0.5,
                    format!(
                        "value {} is a country name, not a code; add a {{ map: … }}",
                        code(s)
                    ),
                    &["trim"],
                )
            }
            _ => ev(
                -1.0,
                "value is not an ISO 3166-1 alpha-2 code",
                &["trim", "uppercase"],
            ),
        },
        Kind::Date => match (unix_transform(value), text) {
            (_, Some(s)) if is_date(s) => ev(1.0, "value is a date (YYYY-MM-DD)", &["trim"]),
            (Some(unix), _) if checker.features.date => ev(
                0.7,
                "value is a unix time; `date` keeps its UTC day",
                if unix == "unix_millis" {
                    &["unix_millis", "date"]
                } else {
                    &["unix_seconds", "date"]
                },
            ),
            (_, Some(s)) if checker.features.date && checker.is_datetime(s) => ev(
                0.8,
                "value is a date-time; `date` keeps its UTC day",
                &["date"],
            ),
            (_, Some(s)) if checker.is_datetime(s) => ev(
                -0.3,
                "value is a date-time; the contract wants YYYY-MM-DD and no transform cuts the time off",
                &["trim"],
            ),
            _ => ev(-1.0, "value is not a date", &["trim"]),
        },
        Kind::Datetime => match (unix_transform(value), text) {
            (Some(t), _) => ev(
                0.9,
                format!(
                    "value is a unix time in {}",
                    if t == "unix_millis" {
                        "milliseconds"
                    } else {
                        "seconds"
                    }
                ),
                &[t],
            ),
            (None, Some(s)) if checker.is_datetime(s) => {
                ev(1.0, "value is a date-time", &["datetime_utc"])
            }
            (None, Some(s)) if checker.features.xero_date && s.starts_with("/Date(") => {
                ev(0.9, "value is a Xero /Date(…)/", &["xero_date"])
            }
            _ => ev(-1.0, "value is not a date-time the transforms read", &[]),
        },
        Kind::Bool => match (value, text) {
            (Value::Bool(_), _) => ev(1.0, "value is true/false", &[]),
            (_, Some(s)) if bool_text(s) => {
                ev(0.8, format!("value {} reads as yes/no", code(s)), &["bool"])
            }
            _ => ev(-1.0, "value is not true/false", &[]),
        },
        Kind::Integer => match (value, text) {
            (Value::Number(n), _) if n.is_i64() || n.is_u64() => {
                ev(1.0, "value is an integer", &[])
            }
            (_, Some(s))
                if checker.features.integer
                    && s.trim_start_matches('-')
                        .bytes()
                        .all(|b| b.is_ascii_digit()) =>
            {
                ev(0.7, "value is a whole number as text", &["integer"])
            }
            _ => ev(-1.0, "value is not an integer", &[]),
        },
        Kind::Enum => match text {
            Some(s) if rule.values.iter().any(|v| v == s) => ev(
                1.0,
                format!("value {} is one of the contract's values", code(s)),
                &[],
            ),
            Some(s) if rule.values.iter().any(|v| *v == s.to_lowercase()) => ev(
                0.9,
                format!(
                    "value {} is one of the contract's values in lower case",
                    code(s)
                ),
                &["trim", "lowercase"],
            ),
            Some(s) => ev(
                -0.2,
                format!(
                    "value {} is not one of {}; add a {{ map: … }}",
                    code(s),
                    rule.values.join(", ")
                ),
                &["trim", "lowercase"],
            ),
            None => ev(-1.0, "value is not text", &[]),
        },
        Kind::Money => {
            let money = value.as_object();
            let units = money
                .and_then(|m| m.get("minor_units"))
                .and_then(Value::as_i64);
            let currency = money
                .and_then(|m| m.get("currency"))
                .and_then(Value::as_str);
            if units.is_some() && currency.is_some_and(|c| checker.is_currency(c)) {
                ev(1.0, "value is {minor_units, currency}", &[])
            } else {
                ev(-1.0, "value is not {minor_units, currency}", &[])
            }
        }
        Kind::List => ev(1.0, "value is a list", &[]),
        Kind::Text => text_evidence(field, value, split, checker),
    }
}

fn text_evidence(field: &str, value: &Value, split: Option<Split>, checker: &Checker) -> Evidence {
    let Some(s) = value.as_str().map(str::trim) else {
        return match value {
            Value::Number(_) => ev(0.3, "value is a number", &["to_string"]),
            _ => ev(-1.0, "value is not text", &[]),
        };
    };
    let person = matches!(field, "first_name" | "last_name");
    let looks_like = if contracts::is_email(s) {
        Some("an email")
    } else if is_date(s) || checker.is_datetime(s) {
        Some("a date")
    } else if person && (s.starts_with("http://") || s.starts_with("https://")) {
        Some("a URL")
    } else {
        None
    };
    if let Some(other) = looks_like {
        return ev(
            -0.5,
            format!("value looks like {other}, not {}", field.replace('_', " ")),
            &["trim"],
        );
    }
    if let Some(split) = split {
        let transforms: &[&'static str] = match split {
            Split::First => &["trim", "first_name"],
            Split::Last => &["trim", "last_name"],
        };
        return if s.split_whitespace().count() >= 2 {
            ev(0.5, "value has more than one word", transforms)
        } else {
            ev(
                -0.1,
                "value is one word: it may not be a person's full name",
                transforms,
            )
        };
    }
    if person {
        if s.chars().any(|c| c.is_ascii_digit()) {
            ev(-0.3, "value has digits, unlike a name", &["trim"])
        } else {
            ev(0.6, "value looks like a name", &["trim"])
        }
    } else {
        ev(0.4, "value is text", &["trim"])
    }
}

/// A scored candidate path for one field.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub path: String,
    pub depth: usize,
    pub name: f64,
    pub value: f64,
    pub score: f64,
    pub transforms: Vec<&'static str>,
    pub parts: Vec<Part>,
    pub why: String,
}

fn by_score(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then(a.depth.cmp(&b.depth))
        .then_with(|| a.path.cmp(&b.path))
}

fn within(path: &str, root: &str) -> bool {
    root.is_empty() || path.starts_with(&format!("{root}."))
}

fn is_ancestor_or_self(ancestor: &str, path: &str) -> bool {
    ancestor == path || within(path, ancestor)
}

/// Every candidate for a contract field, best first (including those under the threshold).
pub(crate) fn candidates(
    field: &str,
    rule: &FieldRule,
    sample: &Value,
    nodes: &[Node],
    root: &str,
    checker: &Checker,
) -> Vec<Candidate> {
    let kind = kind_of(field, rule);
    let mut out = if kind == Kind::Money {
        money_candidates(field, rule, sample, nodes, root, checker)
    } else {
        Vec::new()
    };
    for node in nodes.iter().filter(|n| kind.accepts(&n.value)) {
        let name = name_match(field, &node.names);
        let mut value = evidence(kind, field, rule, &node.value, name.split, checker);
        // An email is distinctive enough to propose without a name match, at low confidence.
        let distinctive = kind == Kind::Email && value.score >= 1.0;
        if name.score < 0.3 && !distinctive {
            continue;
        }
        let name_score = if distinctive {
            name.score.max(0.25)
        } else {
            name.score
        };
        if value.score > -1.0
            && !is_empty(&node.value)
            && let Err(problem) = checker.dry_run(field, rule, &node.value, &value.transforms)
        {
            // A path whose sample value breaks the contract would dead-letter every event: never
            // proposed. Phones are the exception: the dry run's region may not be the deployment's.
            let (floor, note) = match kind {
                Kind::Phone => (value.score, "; after e164 (region US) "),
                _ => (-1.0, "; "),
            };
            value.score = value.score.min(floor);
            let _ = write!(value.why, "{note}{problem}");
        }
        let mut score = NAME_WEIGHT * name_score + VALUE_WEIGHT * value.score;
        let mut why = format!("{}; {}", name.why, value.why);
        if !within(&node.path, root) {
            score -= OUTSIDE_PENALTY;
            let _ = write!(why, "; outside the record ({root})");
        }
        out.push(Candidate {
            path: node.path.clone(),
            depth: node.depth(),
            name: name_score,
            value: value.score,
            score: score.clamp(0.0, 0.99),
            transforms: value.transforms,
            parts: Vec::new(),
            why,
        });
    }
    out.sort_by(by_score);
    out
}

/// Money built from an amount and the nearest currency code (`object:` with `minor_units`), when
/// this build's mapping language can do it: decimals are major units (`minor_units` converts
/// them), integers are taken as minor units already (Stripe's way; the evidence says so).
fn money_candidates(
    field: &str,
    rule: &FieldRule,
    sample: &Value,
    nodes: &[Node],
    root: &str,
    checker: &Checker,
) -> Vec<Candidate> {
    if !checker.features.money {
        return Vec::new();
    }
    let mut out = Vec::new();
    for node in nodes {
        let name = name_match(field, &node.names);
        if name.score < 0.3 {
            continue;
        }
        let (mut value, why, transforms): (f64, &str, &[&'static str]) = match &node.value {
            Value::Number(n) if n.is_i64() || n.is_u64() => (
                0.6,
                "value is an integer: taken as minor units already (check)",
                &[],
            ),
            Value::Number(_) => (
                0.9,
                "value is a decimal amount: minor_units converts it",
                &["minor_units"],
            ),
            Value::String(s) if is_decimal(s) => (
                0.9,
                "value is a decimal amount as text: minor_units converts it",
                &["minor_units"],
            ),
            Value::String(s)
                if checker.features.integer
                    && !s.trim().is_empty()
                    && s.trim().bytes().all(|b| b.is_ascii_digit()) =>
            {
                (
                    0.5,
                    "value is a whole number as text: taken as minor units (check)",
                    &["integer"],
                )
            }
            _ => continue,
        };
        let Some(currency) = nearest_currency(node, nodes, checker) else {
            continue;
        };
        let parts = vec![
            Part {
                name: "minor_units",
                path: node.path.clone(),
                transforms: transforms.to_vec(),
            },
            Part {
                name: "currency",
                path: currency.path.clone(),
                transforms: vec!["trim", "uppercase"],
            },
        ];
        let mut why = format!(
            "{}; {why}; currency {} at {}",
            name.why,
            code(currency.value.as_str().unwrap_or_default()),
            currency.path
        );
        let built = checker.resolve(&spec_json(&[], &[], &parts), sample);
        let verdict = match built {
            Ok(Some(money)) => checker
                .satisfies(field, rule, money)
                .map_err(|problem| format!("the contract says: {problem}")),
            Ok(None) => Ok(()),
            Err(problem) => Err(format!("the transforms fail: {problem}")),
        };
        if let Err(problem) = verdict {
            value = -1.0;
            let _ = write!(why, "; {problem}");
        }
        let mut score = NAME_WEIGHT * name.score + VALUE_WEIGHT * value;
        if !within(&node.path, root) {
            score -= OUTSIDE_PENALTY;
            let _ = write!(why, "; outside the record ({root})");
        }
        out.push(Candidate {
            path: node.path.clone(),
            depth: node.depth(),
            name: name.score,
            value,
            score: score.clamp(0.0, 0.99),
            transforms: Vec::new(),
            parts,
            why,
        });
    }
    out
}

/// A decimal amount as text: `110.00`, `-5.5`.
fn is_decimal(s: &str) -> bool {
    let s = s.trim();
    let s = s.strip_prefix('-').unwrap_or(s);
    s.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    })
}

fn is_currency_node(node: &Node, checker: &Checker) -> bool {
    node.names
        .last()
        .is_some_and(|k| tokens(k).iter().any(|t| t == "currency"))
        && node.value.as_str().is_some_and(|s| checker.is_currency(s))
}

/// The currency code closest to an amount: the longest shared path, then the shallowest.
fn nearest_currency<'a>(amount: &Node, nodes: &'a [Node], checker: &Checker) -> Option<&'a Node> {
    nodes
        .iter()
        .filter(|n| is_currency_node(n, checker))
        .max_by_key(|n| {
            let common = n
                .path
                .split('.')
                .zip(amount.path.split('.'))
                .take_while(|(a, b)| a == b)
                .count();
            (
                common,
                std::cmp::Reverse(n.depth()),
                std::cmp::Reverse(n.path.clone()),
            )
        })
}

/// The best candidate above the threshold, with other paths that name the field just as well
/// and take the same transforms (the first non-empty one wins at run time).
fn pick(candidates: &[Candidate]) -> Option<Pick> {
    let best = candidates.first().filter(|c| c.score >= THRESHOLD)?;
    let mut paths = vec![best.path.clone()];
    for other in &candidates[1..] {
        if paths.len() >= MAX_PATHS {
            break;
        }
        if best.parts.is_empty()
            && other.parts.is_empty()
            && other.score >= THRESHOLD
            && other.transforms == best.transforms
            && other.name >= 0.9
            && other.name >= best.name - 0.05
            && other.value >= 0.0
        {
            paths.push(other.path.clone());
        }
    }
    // The record's own field first (the first non-empty path wins at run time): by name, then
    // depth; the confidence and evidence stay the best candidate's.
    let rank = |path: &String| {
        let i = candidates.iter().position(|c| &c.path == path).unwrap_or(0);
        let c = &candidates[i];
        (
            std::cmp::Reverse((c.name * 100.0).round() as i64),
            c.depth,
            i,
        )
    };
    paths.sort_by_key(rank);
    let mut why = best.why.clone();
    if paths[0] != best.path {
        let _ = write!(why, " (at {})", best.path);
    }
    Some(Pick {
        paths,
        transforms: best.transforms.clone(),
        parts: best.parts.clone(),
        confidence: best.score,
        why,
    })
}

/// Where the record sits in the payload: down through envelope keys (`data`, `object`, the
/// object's own names, singular or plural, or a lone key; a list's first item) from the top.
pub(crate) fn record_root(sample: &Value, object: &str) -> String {
    let mut path = String::new();
    let mut node = sample;
    if let Value::Array(items) = node
        && let Some(first @ Value::Object(_)) = items.first()
    {
        node = first;
        path = "0".to_owned();
    }
    let names = object_names(object);
    while let Value::Object(map) = node {
        let Some((next, step)) = envelope_child(map, names) else {
            break;
        };
        path = if path.is_empty() {
            step
        } else {
            format!("{path}.{step}")
        };
        node = next;
    }
    path
}

/// The child of an object that wraps the record, with its path step (`Contacts.0` for a list).
fn envelope_child<'a>(map: &'a Map<String, Value>, names: &[&str]) -> Option<(&'a Value, String)> {
    map.iter().find_map(|(key, child)| {
        let squashed = squash(key);
        let singular = squashed.strip_suffix('s').unwrap_or(&squashed);
        let wrapper = WRAPPERS.contains(&squashed.as_str())
            || names.contains(&squashed.as_str())
            || names.contains(&singular)
            || map.len() == 1;
        if !wrapper || key.contains('.') {
            return None;
        }
        match child {
            Value::Object(m) if !m.is_empty() => Some((child, key.clone())),
            Value::Array(items) => match items.first() {
                Some(first @ Value::Object(m)) if !m.is_empty() => {
                    Some((first, format!("{key}.0")))
                }
                _ => None,
            },
            _ => None,
        }
    })
}

/// The record's id: `id` or `<object>_id` (`ContactID`, `customer_id`) at the top of the record;
/// in the envelope only as a weaker guess (it may be the event's id).
pub(crate) fn record_id(nodes: &[Node], root: &str, object: &str) -> Option<Pick> {
    // The object's names, and the envelope's (`Contacts.0` holds a contact, whatever the object).
    let mut names: Vec<String> = object_names(object)
        .iter()
        .map(|n| (*n).to_owned())
        .collect();
    for step in root
        .split('.')
        .filter(|s| !s.bytes().all(|b| b.is_ascii_digit()))
    {
        let squashed = squash(step);
        names.push(squashed.strip_suffix('s').unwrap_or(&squashed).to_owned());
    }
    let mut found = Vec::new();
    for node in nodes {
        let Some(key) = node.names.last() else {
            continue;
        };
        if !(node.value.is_string() || node.value.is_number() || node.value.is_null()) {
            continue;
        }
        let squashed = squash(key);
        let (name, name_why) = if squashed == "id" {
            (1.0, format!("name {key:?}"))
        } else if names
            .iter()
            .any(|n| squashed == format!("{n}id") || squashed == format!("{n}uuid"))
        {
            (0.95, format!("name {key:?} is the record's id"))
        } else if matches!(
            squashed.as_str(),
            "uuid" | "guid" | "resourceid" | "entityid" | "recordid" | "objectid" | "externalid"
        ) {
            (0.8, format!("name {key:?} names an id"))
        } else {
            continue;
        };
        let (factor, place) = if node.parent() == root {
            (
                1.0,
                if root.is_empty() {
                    "at the top of the payload".to_owned()
                } else {
                    format!("at the top of the record ({root})")
                },
            )
        } else if is_ancestor_or_self(node.parent(), root) {
            (
                0.7,
                format!("in the envelope around the record ({root}): it may be the event's id"),
            )
        } else {
            continue;
        };
        let (value, value_why, transforms): (f64, &str, &[&'static str]) = match &node.value {
            v if is_empty(v) => (0.0, "no value in the sample to check", &[]),
            Value::Number(_) => (1.0, "value is a number", &["to_string"]),
            _ => (1.0, "value is an identifier", &[]),
        };
        let score = NAME_WEIGHT * name * factor + VALUE_WEIGHT * value;
        found.push(Candidate {
            path: node.path.clone(),
            depth: node.depth(),
            name,
            value,
            score: score.clamp(0.0, 0.99),
            transforms: transforms.to_vec(),
            parts: Vec::new(),
            why: format!("{name_why} {place}; {value_why}"),
        });
    }
    found.sort_by(by_score);
    found
        .first()
        .filter(|c| c.score >= THRESHOLD)
        .map(|c| Pick {
            paths: vec![c.path.clone()],
            transforms: c.transforms.clone(),
            parts: Vec::new(),
            confidence: c.score,
            why: c.why.clone(),
        })
}

/// How a key names a time: an update (best), an event, a creation.
fn time_name(key: &str) -> Option<(f64, &'static str)> {
    let toks = tokens(key);
    let squashed = toks.concat();
    let has = |t: &str| toks.iter().any(|x| x == t);
    if has("updated")
        || has("modified")
        || has("changed")
        || has("modstamp")
        || squashed == "lastmodified"
    {
        Some((1.0, "an update time"))
    } else if has("occurred")
        || has("timestamp")
        || has("fired")
        || has("sent")
        || squashed == "time"
        || squashed.starts_with("eventtime")
        || squashed.starts_with("eventdate")
    {
        Some((0.9, "an event time"))
    } else if has("created") || has("creation") || squashed == "createdate" {
        Some((0.75, "a creation time"))
    } else {
        None
    }
}

/// When the change happened: update, event or creation times at the top of the record or in its
/// envelope, with the transform their values need. `Err` carries why a time-named field was
/// not taken.
pub(crate) fn occurred_at(
    nodes: &[Node],
    root: &str,
    checker: &Checker,
) -> Result<Pick, Option<String>> {
    let mut found = Vec::new();
    let mut rejected = None;
    for node in nodes {
        let Some(key) = node.names.last() else {
            continue;
        };
        let Some((name, what)) = time_name(key) else {
            continue;
        };
        if !is_ancestor_or_self(node.parent(), root) || is_empty(&node.value) {
            continue;
        }
        let evidence = evidence(
            Kind::Datetime,
            "occurred_at",
            &rule(FieldType::Datetime),
            &node.value,
            None,
            checker,
        );
        if evidence.score <= 0.0 {
            rejected.get_or_insert_with(|| format!("{} is not a date-time the transforms read (datetime_utc: RFC 3339 or YYYY-MM-DD HH:MM:SS; unix_seconds; unix_millis)", node.path));
            continue;
        }
        let score = NAME_WEIGHT * name + VALUE_WEIGHT * evidence.score;
        found.push((
            node.parent().to_owned(),
            Candidate {
                path: node.path.clone(),
                depth: node.depth(),
                name,
                value: evidence.score,
                score: score.clamp(0.0, 0.99),
                transforms: evidence.transforms,
                parts: Vec::new(),
                why: format!("name {key:?} is {what}; {}", evidence.why),
            },
        ));
    }
    found.sort_by(|a, b| by_score(&a.1, &b.1));
    let Some((parent, best)) = found.first().filter(|(_, c)| c.score >= THRESHOLD) else {
        return Err(rejected);
    };
    let mut paths = vec![best.path.clone()];
    for (other_parent, other) in &found[1..] {
        if paths.len() < MAX_PATHS
            && other_parent == parent
            && other.transforms == best.transforms
            && other.score >= THRESHOLD
        {
            paths.push(other.path.clone());
        }
    }
    Ok(Pick {
        paths,
        transforms: best.transforms.clone(),
        parts: best.parts.clone(),
        confidence: best.score,
        why: best.why.clone(),
    })
}

/// Money fields need `{minor_units, currency}`; when no proposal could build it (no currency
/// code found, or a mapping language without `object:`), say where the amount and the currency
/// are, for the person writing it by hand.
fn money_hint(field: &str, nodes: &[Node], checker: &Checker) -> Option<String> {
    let amount = nodes
        .iter()
        .filter(|n| {
            n.value.is_number()
                || n.value
                    .as_str()
                    .is_some_and(|s| s.trim().parse::<f64>().is_ok())
        })
        .map(|n| (n, name_match(field, &n.names).score))
        .filter(|(_, score)| *score >= 0.5)
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.depth().cmp(&a.0.depth())))?
        .0;
    let currency = nearest_currency(amount, nodes, checker);
    let minor = if amount.value.is_i64() {
        "an integer (minor units?)"
    } else {
        "a decimal (major units)"
    };
    Some(match currency {
        Some(c) => format!(
            "amount at {} ({minor}), currency at {} ({}); build {{minor_units, currency}} by hand",
            amount.path,
            c.path,
            code(c.value.as_str().unwrap_or_default())
        ),
        None => format!(
            "amount at {} ({minor}), but no currency code in the sample",
            amount.path
        ),
    })
}

/// The event type named by the sample: its `type`, `eventType`, `event_type`, `topic` or `event`.
fn sample_event_type(sample: &Value) -> Option<(String, String)> {
    let top = match sample {
        Value::Array(items) => items.first()?,
        other => other,
    };
    let map = top.as_object()?;
    ["type", "eventType", "event_type", "topic", "event"]
        .iter()
        .find_map(|key| {
            map.get(*key)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(|s| (s.trim().to_owned(), (*key).to_owned()))
        })
}

/// Proposes a mapping from one sample for `contract`.
pub(crate) fn suggest(
    sample: &Value,
    contract: &Contract,
    options: &Options,
    checker: &Checker,
) -> Proposal {
    let nodes = flatten(sample);
    let root = record_root(sample, &contract.object);
    let (event_type, event_type_origin) = match (&options.event_type, sample_event_type(sample)) {
        (Some(given), _) => (given.clone(), None),
        (None, Some((found, key))) => (
            found,
            Some(format!(
                "from the sample's {key:?}; check how ingest names it"
            )),
        ),
        (None, None) => (
            "TODO".to_owned(),
            Some("TODO: the sample names no event type; pass --event-type".to_owned()),
        ),
    };
    let mut fields = BTreeMap::new();
    let mut missing = Vec::new();
    for (field, rule) in &contract.fields {
        let found = candidates(field, rule, sample, &nodes, &root, checker);
        match pick(&found) {
            Some(p) => {
                fields.insert(field.clone(), p);
            }
            None => {
                let hint = if kind_of(field, rule) == Kind::Money {
                    money_hint(field, &nodes, checker)
                } else {
                    found
                        .first()
                        .filter(|c| c.name >= 0.5)
                        .map(|c| format!("closest: {} ({:.2}: {})", c.path, c.score, c.why))
                };
                missing.push(Missing {
                    field: field.clone(),
                    required: rule.required,
                    default: rule.default.clone(),
                    hint,
                });
            }
        }
    }
    let (occurred_at, occurred_at_hint) = match occurred_at(&nodes, &root, checker) {
        Ok(p) => (Some(p), None),
        Err(hint) => (None, hint),
    };
    Proposal {
        name: options.name.clone(),
        source_kind: options.source_kind.clone(),
        event_type,
        event_type_origin,
        contract: contract.id(),
        sample_label: options.sample_label.clone(),
        record_id: record_id(&nodes, &root, &contract.object),
        root,
        occurred_at,
        occurred_at_hint,
        fields,
        missing,
    }
}

/// A YAML scalar: bare when plain and unambiguous, double-quoted otherwise.
fn scalar(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

fn spec(pick: &Pick) -> String {
    if !pick.parts.is_empty() {
        let parts: Vec<String> = pick
            .parts
            .iter()
            .map(|part| {
                spec(&Pick {
                    paths: vec![part.path.clone()],
                    transforms: part.transforms.clone(),
                    parts: Vec::new(),
                    confidence: 0.0,
                    why: String::new(),
                })
            })
            .zip(&pick.parts)
            .map(|(spec, part)| format!("{}: {spec}", part.name))
            .collect();
        return format!("{{ object: {{ {} }} }}", parts.join(", "));
    }
    let paths: Vec<String> = pick.paths.iter().map(|p| scalar(p)).collect();
    if pick.transforms.is_empty() {
        format!("{{ paths: [{}] }}", paths.join(", "))
    } else {
        format!(
            "{{ paths: [{}], transforms: [{}] }}",
            paths.join(", "),
            pick.transforms.join(", ")
        )
    }
}

/// One line of a comment: no line breaks from names in the sample.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// The proposal as a commented mapping file.
pub(crate) fn render(p: &Proposal) -> String {
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# PROPOSAL from `switchyard mappings suggest` ({} → {}): review every line before use.",
        one_line(&p.sample_label),
        p.contract
    );
    let _ = writeln!(
        y,
        "# Each guess comes from one sample, with its confidence (0.00–1.00) and the evidence."
    );
    let _ = writeln!(
        y,
        "# Nothing is deployed: fix what is wrong, fill in what is missing, then put the file in"
    );
    let _ = writeln!(
        y,
        "# transform.mappings_dir and run `switchyard contracts check --mappings DIR`."
    );
    let _ = writeln!(
        y,
        "# The record was found {}.",
        if p.root.is_empty() {
            "at the top of the payload".to_owned()
        } else {
            format!("at {}", p.root)
        }
    );
    let _ = writeln!(y, "name: {}", scalar(&p.name));
    let _ = writeln!(y, "source_kind: {}", scalar(&p.source_kind));
    let _ = write!(y, "event_types: [{}]", scalar(&p.event_type));
    match &p.event_type_origin {
        Some(origin) => {
            let _ = writeln!(y, "  # {}", one_line(origin));
        }
        None => y.push('\n'),
    }
    let _ = writeln!(y, "contract: {}", p.contract);
    match &p.record_id {
        Some(pick) => {
            let _ = writeln!(
                y,
                "record_id: {}  # {:.2}: {}",
                spec(pick),
                pick.confidence,
                one_line(&pick.why)
            );
        }
        None => {
            let _ = writeln!(
                y,
                "record_id: {{ paths: [TODO] }}  # TODO: no id at the top of the record; give the path of the record's id in the source"
            );
        }
    }
    match (&p.occurred_at, &p.occurred_at_hint) {
        (Some(pick), _) => {
            let _ = writeln!(
                y,
                "occurred_at: {}  # {:.2}: {}",
                spec(pick),
                pick.confidence,
                one_line(&pick.why)
            );
        }
        (None, hint) => {
            let _ = writeln!(
                y,
                "# occurred_at: no update or creation time found{}; transform uses the time of receipt",
                hint.as_ref()
                    .map(|h| format!(" ({})", one_line(h)))
                    .unwrap_or_default()
            );
        }
    }
    if p.fields.is_empty() {
        let _ = writeln!(y, "fields: {{}}");
    } else {
        let _ = writeln!(y, "fields:");
        for (field, pick) in &p.fields {
            let _ = writeln!(
                y,
                "  {field}: {}  # {:.2}: {}",
                spec(pick),
                pick.confidence,
                one_line(&pick.why)
            );
        }
    }
    if !p.missing.is_empty() {
        let _ = writeln!(y, "# Not found in the sample:");
        for m in &p.missing {
            let mut line = format!("#   {}", m.field);
            if m.required {
                line.push_str(" — REQUIRED: the contract rejects a record without it");
            } else if let Some(default) = &m.default {
                let _ = write!(line, " (the contract's default: {default})");
            }
            if let Some(hint) = &m.hint {
                let _ = write!(line, " — {}", one_line(hint));
            }
            let _ = writeln!(y, "{line}");
        }
    }
    y
}

/// The last comment of the file: what the proposal did with the sample.
fn dry_run_comment(p: &Proposal, contract: &Contract, problems: &[String]) -> String {
    if problems.is_empty() {
        format!(
            "# Dry run on the sample: {} field(s) mapped; {} accepts the record.\n",
            p.fields.len(),
            contract.id()
        )
    } else {
        // Field names only: the messages carry sample values.
        let fields: Vec<&str> = problems
            .iter()
            .map(|problem| problem.split(':').next().unwrap_or_default())
            .collect();
        format!(
            "# Dry run on the sample: {} field(s) mapped; problems with {} (details on stderr).\n",
            p.fields.len(),
            fields.join(", ")
        )
    }
}

/// The table for stderr: field, first path, confidence; then the dry run's verdict.
fn summary(p: &Proposal, contract: &Contract, problems: &[String]) -> String {
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let shown = |pick: &Pick| {
        let first = pick.paths.first().cloned().unwrap_or_default();
        if pick.paths.len() > 1 {
            format!("{first} (+{})", pick.paths.len() - 1)
        } else {
            first
        }
    };
    let mut row = |field: &str, pick: Option<&Pick>, none: &str| {
        rows.push(match pick {
            Some(pick) => (
                field.to_owned(),
                shown(pick),
                format!("{:.2}", pick.confidence),
            ),
            None => (field.to_owned(), none.to_owned(), String::new()),
        });
    };
    row("record_id", p.record_id.as_ref(), "TODO (not found)");
    row(
        "occurred_at",
        p.occurred_at.as_ref(),
        "(not found: receipt time)",
    );
    for (field, rule) in &contract.fields {
        let none = if rule.required {
            "(not found; required)"
        } else {
            "(not found)"
        };
        row(field, p.fields.get(field), none);
    }
    let width = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let path_width = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:<path_width$}  confidence",
        "field", "path"
    );
    for (field, path, confidence) in rows {
        let line = format!("{field:<width$}  {path:<path_width$}  {confidence}");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if problems.is_empty() {
        let _ = writeln!(
            out,
            "dry run on the sample: {} accepts the mapped record",
            contract.id()
        );
    } else {
        let _ = writeln!(out, "dry run on the sample: {}", problems.join("; "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(object: &str) -> Contract {
        contracts::built_in()
            .expect("built-in contracts")
            .into_iter()
            .find(|c| c.object == object)
            .expect("contract")
    }

    fn options() -> Options {
        Options {
            name: "test-contact".to_owned(),
            source_kind: "standard-webhooks".to_owned(),
            event_type: None,
            sample_label: "sample.json".to_owned(),
        }
    }

    fn names(path: &str) -> Vec<String> {
        path.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn names_split_into_words_in_every_case() {
        assert_eq!(tokens("EmailAddress"), ["email", "address"]);
        assert_eq!(tokens("firstName"), ["first", "name"]);
        assert_eq!(tokens("first_name"), ["first", "name"]);
        assert_eq!(tokens("FNAME"), ["fname"]);
        assert_eq!(tokens("UpdatedDateUTC"), ["updated", "date", "utc"]);
        assert_eq!(tokens("HTTPServer"), ["http", "server"]);
        assert_eq!(tokens("phone-number2"), ["phone", "number", "2"]);
        assert_eq!(tokens("data[merges][FNAME]"), ["data", "merges", "fname"]);
        assert!(tokens("--").is_empty());
    }

    #[test]
    fn flattening_gives_mapping_paths_with_indices_and_key_names() {
        let nodes = flatten(&json!({
            "items": [{ "sku": "A-1" }],
            "data[merges][FNAME]": "Jane",
            "a.b": "unreachable",
        }));
        let paths: Vec<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
        assert!(paths.contains(&"items.0.sku"), "{paths:?}");
        assert!(paths.contains(&"items"), "{paths:?}");
        assert!(
            !paths.iter().any(|p| p.starts_with("a.b")),
            "a key with a dot cannot be a path: {paths:?}"
        );
        let fname = nodes
            .iter()
            .find(|n| n.path == "data[merges][FNAME]")
            .expect("bracketed key");
        assert_eq!(fname.names, ["data", "merges", "FNAME"]);
        let sku = nodes.iter().find(|n| n.path == "items.0.sku").expect("sku");
        assert_eq!(sku.names, ["items", "sku"], "indices are not names");
    }

    #[test]
    fn names_score_exact_then_synonym_then_full_name_then_shared_words() {
        let exact = name_match("email", &names("data.email"));
        assert!((exact.score - 1.0).abs() < 1e-9, "{exact:?}");
        let synonym = name_match("email", &names("EmailAddress"));
        assert!((synonym.score - 0.9).abs() < 1e-9, "{synonym:?}");
        assert!(synonym.why.contains("~ email"), "{synonym:?}");
        for (field, key) in [
            ("first_name", "given_name"),
            ("first_name", "FNAME"),
            ("last_name", "surname"),
            ("phone", "mobile"),
            ("company_name", "organization"),
            ("country", "country_code"),
            ("sku", "item_code"),
            ("total", "grand_total"),
        ] {
            let m = name_match(field, &names(key));
            assert!(m.score >= 0.85, "{field} ~ {key}: {m:?}");
        }
        let parent = name_match("company_name", &names("company.name"));
        assert!((parent.score - 0.9).abs() < 1e-9, "{parent:?}");
        let full = name_match("first_name", &names("name"));
        assert_eq!(full.split, Some(Split::First));
        assert!(full.score < synonym.score);
        let shared = name_match("email", &names("billing_email"));
        assert!(
            shared.score > 0.3 && shared.score < 0.8,
            "shared words are weaker than a synonym: {shared:?}"
        );
        // Generic words alone (`id`, `name`) are no match.
        assert!(name_match("first_name", &names("id")).score < 1e-9);
        assert!(name_match("company_name", &names("file_name")).score < 1e-9);
        assert!(name_match("email", &names("livemode")).score < 1e-9);
    }

    #[test]
    fn values_count_for_or_against_the_field_type() {
        let checker = Checker::new("contact");
        let contact = contract("contact");
        let read = |field: &str, value: Value| {
            let rule = &contact.fields[field];
            evidence(kind_of(field, rule), field, rule, &value, None, &checker)
        };
        let email = read("email", json!("Jane@Example.com"));
        assert!(email.score >= 1.0 && email.transforms == ["trim", "lowercase"]);
        assert!(read("email", json!("jane at example")).score < 0.0);
        // contact.phone is a string in the contract, but named like a phone.
        let phone = read("phone", json!("(201) 555-0123"));
        assert!(phone.score >= 1.0 && phone.transforms == ["trim", "e164"]);
        assert!(read("phone", json!("call me")).score < 0.0);
        assert!(read("country", json!("gb")).score >= 1.0);
        assert!(read("country", json!("United Kingdom")).score < 0.0);
        assert!(read("country", json!("XX")).score < 0.0);
        assert!(read("marketing_consent", json!(true)).score >= 1.0);
        assert_eq!(
            read("marketing_consent", json!("yes")).transforms,
            ["bool"],
            "yes/no text reads through `bool`"
        );
        assert!(read("marketing_consent", json!("subscribed")).score < 0.0);
        let stage = read("lifecycle_stage", json!("Customer"));
        assert!(stage.score > 0.5 && stage.transforms == ["trim", "lowercase"]);
        assert!(read("lifecycle_stage", json!("vip")).score < 0.0);
        assert!(read("first_name", json!("Jane")).score > 0.5);
        assert!(read("first_name", json!("jane@example.com")).score < 0.0);
        assert!(
            read("first_name", Value::Null).score.abs() < 1e-9,
            "no value is no evidence"
        );
        let order = contract("order");
        let rule = &order.fields["placed_at"];
        let at = |value: Value| evidence(Kind::Datetime, "placed_at", rule, &value, None, &checker);
        assert_eq!(at(json!(1_700_000_000)).transforms, ["unix_seconds"]);
        assert_eq!(at(json!(1_700_000_000_000_i64)).transforms, ["unix_millis"]);
        assert_eq!(
            at(json!("2021-12-31T19:00:00-05:00")).transforms,
            ["datetime_utc"]
        );
        assert_eq!(
            at(json!("2009-03-26 21:35:57")).transforms,
            ["datetime_utc"]
        );
        assert!(at(json!("soon")).score < 0.0);
        assert!(
            at(json!(42)).score < 0.0,
            "42 is no unix time of this century"
        );
    }

    #[test]
    fn value_patterns_tell_phones_dates_and_amounts_apart() {
        assert_eq!(phone_digits("+44 20 7946 0958"), Some(12));
        assert_eq!(phone_digits("(201) 555-0123"), Some(10));
        assert_eq!(phone_digits("2024-06-21"), None, "a date");
        assert_eq!(phone_digits("1234567.89"), None, "a decimal");
        assert_eq!(phone_digits("12345"), None, "too short");
        assert_eq!(phone_digits("1+2345678"), None);
        assert!(is_date("2024-06-21") && !is_date("2024-13-01"));
        assert!(is_decimal("110.00") && is_decimal("-5.5") && !is_decimal("110"));
        assert_eq!(unix_transform(&json!("1234567890")), Some("unix_seconds"));
        assert_eq!(unix_transform(&json!(109_757_538)), None, "1973");
        let checker = Checker::new("order");
        assert!(checker.is_currency("usd") && !checker.is_currency("ABC"));
        assert!(checker.is_country("nz") && !checker.is_country("NZL"));
    }

    #[test]
    fn the_record_is_found_inside_its_envelope() {
        assert_eq!(
            record_root(
                &json!({ "id": "evt_1", "data": { "object": { "id": "cus_1" } } }),
                "contact"
            ),
            "data.object"
        );
        assert_eq!(
            record_root(&json!({ "Contacts": [{ "ContactID": "c" }] }), "company"),
            "Contacts.0",
            "a lone key is an envelope"
        );
        assert_eq!(
            record_root(&json!({ "customer": { "id": 1 }, "type": "x" }), "contact"),
            "customer"
        );
        assert_eq!(
            record_root(&json!({ "id": 1, "email": "a@b.co" }), "contact"),
            ""
        );
        assert_eq!(record_root(&json!([{ "objectId": 1 }]), "contact"), "0");
    }

    #[test]
    fn yaml_scalars_are_quoted_only_when_needed() {
        assert_eq!(scalar("data.object.email"), "data.object.email");
        assert_eq!(scalar("customers/create"), "customers/create");
        assert_eq!(scalar("data[merges][FNAME]"), "\"data[merges][FNAME]\"");
        assert_eq!(scalar("0.id"), "\"0.id\"");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("a: b"), "\"a: b\"");
    }

    #[test]
    fn a_sample_becomes_a_proposal_that_loads_and_explains_itself() {
        let sample = json!({
            "type": "contact.updated",
            "id": "evt_9",
            "data": {
                "id": 42,
                "EmailAddress": "Jane.Doe@Example.com",
                "mobile": "+44 20 7946 0958",
                "fname": "Jane",
                "surname": "Doe",
                "updatedAt": "2026-01-02T03:04:05Z",
                "country": "United Kingdom",
                "accepts_marketing": "yes",
                "notes": "VIP",
            },
        });
        let contact = contract("contact");
        let checker = Checker::new("contact");
        let p = suggest(&sample, &contact, &options(), &checker);
        assert_eq!(p.root, "data");
        assert_eq!(p.event_type, "contact.updated");
        let id = p.record_id.as_ref().expect("record id");
        assert_eq!(id.paths, ["data.id"], "the record's id, not the event's");
        assert_eq!(id.transforms, ["to_string"]);
        let at = p.occurred_at.as_ref().expect("occurred_at");
        assert_eq!(at.paths, ["data.updatedAt"]);
        let field = |name: &str| {
            p.fields
                .get(name)
                .unwrap_or_else(|| panic!("{name}: {p:?}"))
        };
        assert_eq!(field("email").paths, ["data.EmailAddress"]);
        assert!(field("email").confidence > 0.9);
        assert_eq!(field("phone").paths, ["data.mobile"]);
        assert_eq!(field("first_name").paths, ["data.fname"]);
        assert_eq!(field("last_name").paths, ["data.surname"]);
        assert_eq!(field("marketing_consent").transforms, ["bool"]);
        // A country name needs a map: not proposed, but the closest path is named.
        assert!(
            !p.fields.contains_key("country"),
            "{:?}",
            p.fields.get("country")
        );
        let country = p
            .missing
            .iter()
            .find(|m| m.field == "country")
            .expect("country missing");
        assert!(
            country
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("data.country") && h.contains("map")),
            "{country:?}"
        );
        let yaml = render(&p);
        assert!(yaml.starts_with("# PROPOSAL"), "{yaml}");
        assert!(
            yaml.contains(
                "  email: { paths: [data.EmailAddress], transforms: [trim, lowercase] }  # 0.9"
            ),
            "{yaml}"
        );
        assert!(
            yaml.contains("name \\\"EmailAddress\\\" ~ email")
                || yaml.contains("name \"EmailAddress\" ~ email"),
            "{yaml}"
        );
        assert!(yaml.contains("#   job_title"), "{yaml}");
        assert!(
            !yaml.contains("Jane"),
            "no personal data in the comments: {yaml}"
        );
        let loaded = contracts::built_in().expect("contracts");
        let mapping = validate(&yaml, "test-contact", &loaded).expect("the proposal loads");
        assert_eq!(mapping.contract, "contact/v1");
        let problems = dry_run(&mapping, &contact, &sample, &checker.ctx);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_well_named_path_whose_value_contradicts_the_type_is_not_proposed() {
        let sample = json!({ "email": "n/a", "contact_info": "sam@example.org" });
        let contact = contract("contact");
        let checker = Checker::new("contact");
        let p = suggest(&sample, &contact, &options(), &checker);
        let email = p.fields.get("email").expect("email");
        assert_eq!(
            email.paths,
            ["contact_info"],
            "an email-shaped value wins over a name that lies"
        );
        assert!(
            email.confidence > THRESHOLD && email.confidence < 0.6,
            "a value alone is a weak guess: {email:?}"
        );
        let none = suggest(&json!({ "email": "n/a" }), &contact, &options(), &checker);
        assert!(none.fields.is_empty(), "{:?}", none.fields);
        let missing = none
            .missing
            .iter()
            .find(|m| m.field == "email")
            .expect("email missing");
        assert!(missing.required);
        assert!(render(&none).contains("#   email — REQUIRED"));
    }

    #[test]
    fn money_is_built_from_an_amount_and_its_currency_when_the_mapping_language_can() {
        let sample = json!({
            "id": 7, "currency": "usd", "total_price": "403.00", "subtotal_price": "393.00",
            "financial_status": "paid", "name": "#1001", "created_at": "2021-12-31T19:00:00-05:00",
        });
        let order = contract("order");
        let checker = Checker::new("order");
        let p = suggest(&sample, &order, &options(), &checker);
        if checker.features.money {
            let total = p.fields.get("total").expect("total");
            assert_eq!(total.parts.len(), 2, "{total:?}");
            assert_eq!(total.parts[0].path, "total_price");
            assert_eq!(total.parts[0].transforms, ["minor_units"]);
            assert_eq!(total.parts[1].path, "currency");
            let yaml = render(&p);
            assert!(
                yaml.contains("total: { object: { minor_units: { paths: [total_price], transforms: [minor_units] }, currency: { paths: [currency], transforms: [trim, uppercase] } } }"),
                "{yaml}"
            );
            let loaded = contracts::built_in().expect("contracts");
            let mapping = validate(&yaml, "test-contact", &loaded).expect("loads");
            let (mapped, problems) = mapping.apply_all(&sample, &checker.ctx);
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!(
                mapped.record.get("total"),
                Some(&json!({ "minor_units": 40300, "currency": "USD" }))
            );
        } else {
            assert!(!p.fields.contains_key("total"));
            let hint = p
                .missing
                .iter()
                .find(|m| m.field == "total")
                .and_then(|m| m.hint.clone())
                .expect("a hint for total");
            assert!(
                hint.contains("total_price") && hint.contains("currency"),
                "{hint}"
            );
        }
        assert_eq!(
            p.fields.get("status").map(|s| s.paths.clone()),
            Some(vec!["financial_status".to_owned()])
        );
    }
}
