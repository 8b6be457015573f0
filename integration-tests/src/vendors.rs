//! Mock vendor APIs for hydration: HubSpot CRM v3 object reads, QuickBooks Online v3 entity reads
//! and Xero Accounting reads, with each vendor's OAuth2 token endpoint. Access tokens expire and
//! refresh tokens rotate as the vendors document (Intuit and Xero issue a new refresh token on
//! every refresh and refuse the old one; HubSpot keeps it). Every read is recorded, and tests can
//! script failures (5xx, 429 with `Retry-After`, a revoked token) or leave a record out (404).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::mock_oauth::{self, Tokens};

/// The OAuth2 app credentials the mock accepts (for every vendor).
pub const CLIENT_ID: &str = "switchyard-test-client";
pub const CLIENT_SECRET: &str = "switchyard-test-client-secret";
/// A HubSpot private-app token: a static bearer token, valid from the start.
pub const HUBSPOT_PRIVATE_APP_TOKEN: &str = "pat-na1-11111111-2222-3333-4444-555555555555";
/// A Xero access token valid from the start (as if issued at connection time).
pub const XERO_FIRST_ACCESS_TOKEN: &str = "xero-access-0";

/// The vendors the mock plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    Hubspot,
    Quickbooks,
    Xero,
}

impl Vendor {
    fn name(self) -> &'static str {
        match self {
            Self::Hubspot => "hubspot",
            Self::Quickbooks => "quickbooks",
            Self::Xero => "xero",
        }
    }

    /// The refresh token issued at connection time.
    pub fn first_refresh_token(self) -> String {
        format!("{}-refresh-1", self.name())
    }

    fn token_path(self) -> &'static str {
        match self {
            Self::Hubspot => "/oauth/v3/token",
            Self::Quickbooks => "/oauth2/v1/tokens/bearer",
            Self::Xero => "/connect/token",
        }
    }

    fn of_path(path: &str) -> Option<Self> {
        if path.starts_with("/crm/v3/objects/") {
            Some(Self::Hubspot)
        } else if path.starts_with("/v3/company/") {
            Some(Self::Quickbooks)
        } else if path.starts_with("/api.xro/2.0/") {
            Some(Self::Xero)
        } else {
            None
        }
    }
}

/// A scripted failure for a vendor's next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (500, 503…).
    Status(u16),
    /// 429 with `Retry-After: <seconds>`.
    RateLimited { retry_after: u64 },
    /// The presented access token is revoked (as if it expired early): 401.
    RevokeToken,
}

/// One read the mock received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub vendor: Vendor,
    pub method: String,
    pub path: String,
    pub query: String,
    /// The bearer token presented (test values only).
    pub bearer: Option<String>,
    pub accept: Option<String>,
    pub xero_tenant_id: Option<String>,
    /// What the mock answered.
    pub status: u16,
}

#[derive(Debug, Default)]
struct Inner {
    tokens: HashMap<Vendor, Tokens>,
    records: HashMap<String, Value>,
    faults: HashMap<Vendor, VecDeque<Fault>>,
    seen: Vec<Seen>,
}

/// The running mock.
#[derive(Debug, Clone)]
pub struct Vendors {
    inner: Arc<Mutex<Inner>>,
    url: String,
}

impl Vendors {
    /// Starts on a free loopback port with no records.
    pub async fn start() -> Self {
        let mut inner = Inner::default();
        for vendor in [Vendor::Hubspot, Vendor::Quickbooks, Vendor::Xero] {
            let mut tokens = Tokens {
                refresh: vendor.first_refresh_token(),
                ..Tokens::default()
            };
            match vendor {
                Vendor::Hubspot => tokens.valid.insert(HUBSPOT_PRIVATE_APP_TOKEN.to_owned()),
                Vendor::Xero => tokens.valid.insert(XERO_FIRST_ACCESS_TOKEN.to_owned()),
                Vendor::Quickbooks => false,
            };
            inner.tokens.insert(vendor, tokens);
        }
        let inner = Arc::new(Mutex::new(inner));
        let app = Router::new()
            .route(Vendor::Hubspot.token_path(), post(token))
            .route(Vendor::Quickbooks.token_path(), post(token))
            .route(Vendor::Xero.token_path(), post(token))
            .fallback(read)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("vendor mock binds");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { inner, url }
    }

    /// The API base URL (every vendor's API is served here).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The vendor's token endpoint.
    pub fn token_url(&self, vendor: Vendor) -> String {
        format!("{}{}", self.url, vendor.token_path())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("vendor mock lock")
    }

    /// Serves `body` (the vendor's whole answer) at `path`.
    pub fn put(&self, path: &str, body: Value) {
        self.lock().records.insert(path.to_owned(), body);
    }

    /// Answers the vendor's next read with `fault` (queued after earlier ones).
    pub fn fail_next(&self, vendor: Vendor, fault: Fault) {
        self.lock()
            .faults
            .entry(vendor)
            .or_default()
            .push_back(fault);
    }

    /// Every read so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// The reads of one path.
    pub fn reads_of(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    /// Successful refreshes of the vendor's token.
    pub fn refreshes(&self, vendor: Vendor) -> usize {
        self.lock().tokens.get(&vendor).map_or(0, |t| t.refreshes)
    }

    /// Refreshes refused (a stale or unknown refresh token, wrong client credentials).
    pub fn refused_refreshes(&self, vendor: Vendor) -> usize {
        self.lock().tokens.get(&vendor).map_or(0, |t| t.refused)
    }

    /// The refresh token the vendor currently accepts.
    pub fn refresh_token(&self, vendor: Vendor) -> String {
        self.lock()
            .tokens
            .get(&vendor)
            .map(|t| t.refresh.clone())
            .unwrap_or_default()
    }
}

/// A CRM v3 object as HubSpot's CRM API reference shows the answer of
/// `GET /crm/v3/objects/contacts/{contactId}` (developers.hubspot.com/docs/api/crm/contacts,
/// "Read"): `{id, properties, createdAt, updatedAt, archived}`, property values as text.
pub fn hubspot_object(id: &str, properties: Value, updated_at: &str) -> Value {
    let mut properties = properties;
    if let Some(map) = properties.as_object_mut() {
        map.insert("hs_object_id".to_owned(), json!(id));
        map.insert("hs_lastmodifieddate".to_owned(), json!(updated_at));
        map.entry("createdate")
            .or_insert_with(|| json!("2019-10-30T03:30:17.883Z"));
    }
    json!({
        "id": id,
        "properties": properties,
        "createdAt": "2019-10-30T03:30:17.883Z",
        "updatedAt": updated_at,
        "archived": false,
    })
}

/// The answer of `GET /v3/company/{realmId}/customer/{id}` as Intuit's QuickBooks Online API
/// reference shows it (developer.intuit.com, Accounting API › Customer › "Read a customer"
/// sample response), with the given id. `BillAddr.Country` is added: the sample has none, and
/// QuickBooks fills it with free text such as "USA".
pub fn quickbooks_customer(id: &str) -> Value {
    json!({
        "Customer": {
            "PrimaryEmailAddr": { "Address": "Surf@Intuit.com" },
            "SyncToken": "0",
            "domain": "QBO",
            "GivenName": "Bill",
            "DisplayName": "Bill's Windsurf Shop",
            "BillWithParent": false,
            "FullyQualifiedName": "Bill's Windsurf Shop",
            "CompanyName": "Bill's Windsurf Shop",
            "FamilyName": "Lucchini",
            "sparse": false,
            "PrimaryPhone": { "FreeFormNumber": "(415) 444-6538" },
            "Active": true,
            "Job": false,
            "BalanceWithJobs": 85.0,
            "BillAddr": {
                "City": "Half Moon Bay",
                "Line1": "12 Ocean Dr.",
                "PostalCode": "94213",
                "Lat": "37.4307072",
                "Long": "-122.4295234",
                "CountrySubDivisionCode": "CA",
                "Country": "USA",
                "Id": "3"
            },
            "PreferredDeliveryMethod": "Print",
            "Taxable": false,
            "PrintOnCheckName": "Bill's Windsurf Shop",
            "Balance": 85.0,
            "Id": id,
            "MetaData": {
                "CreateTime": "2014-09-11T16:49:28-07:00",
                "LastUpdatedTime": "2014-09-18T12:56:01-07:00"
            }
        },
        "time": "2015-07-23T11:07:55.772-07:00"
    })
}

/// The answer of `GET /Contacts/{ContactID}`: the `getContact` 200 example of Xero's Accounting
/// OpenAPI spec (XeroAPI/Xero-OpenAPI `xero_accounting.yaml` @ e952d0bd, in
/// `testdata/vendor/specs/xero/`), copied with the given contact id; its attachments, batch payments
/// and payment terms are left out (nothing reads them).
pub fn xero_contact(id: &str) -> Value {
    json!({
        "Id": "5c83b115-a6e8-4f2a-877f-ba63d009235b",
        "Status": "OK",
        "ProviderName": "Xero API Partner",
        "DateTimeUTC": "/Date(1551462703288)/",
        "Contacts": [{
            "ContactID": id,
            "ContactNumber": "SB2",
            "AccountNumber": "1234567",
            "ContactStatus": "ACTIVE",
            "Name": "Acme Parts Co.",
            "FirstName": "Blake",
            "LastName": "Kohler",
            "CompanyNumber": "NumberBusiness1234",
            "EmailAddress": "bk@krave.co",
            "BankAccountDetails": "12334567",
            "TaxNumber": "123-22-3456",
            "AccountsReceivableTaxType": "TAX003",
            "AccountsPayableTaxType": "TAX022",
            "Addresses": [
                { "AddressType": "STREET", "AddressLine1": "123 Fake Street", "City": "Vancouver",
                  "Region": "British Columbia", "PostalCode": "V6B 2T4", "Country": "", "AttentionTo": "" },
                { "AddressType": "POBOX", "AddressLine1": "1234 Fake Street", "City": "Vancouver",
                  "Region": "British Columbia", "PostalCode": "V6B 2T4", "Country": "", "AttentionTo": "Blake" }
            ],
            "Phones": [
                { "PhoneType": "DDI", "PhoneNumber": "489-44493", "PhoneAreaCode": "345", "PhoneCountryCode": "4" },
                { "PhoneType": "DEFAULT", "PhoneNumber": "408-0914", "PhoneAreaCode": "604", "PhoneCountryCode": "1" },
                { "PhoneType": "FAX", "PhoneNumber": "123-9933", "PhoneAreaCode": "123", "PhoneCountryCode": "2" },
                { "PhoneType": "MOBILE", "PhoneNumber": "999-44", "PhoneAreaCode": "234", "PhoneCountryCode": "3" }
            ],
            "UpdatedDateUTC": "/Date(1551459777193+0000)/",
            "ContactGroups": [],
            "IsSupplier": true,
            "IsCustomer": true,
            "SalesDefaultLineAmountType": "INCLUSIVE",
            "PurchasesDefaultLineAmountType": "INCLUSIVE",
            "DefaultCurrency": "USD",
            "Discount": 13.00,
            "Website": "http://www.google.com",
            "BrandingTheme": { "BrandingThemeID": "dabc7637-62c1-4941-8a6e-ee44fa5090e7", "Name": "Standard" },
            "PurchasesDefaultAccountCode": "660",
            "SalesDefaultAccountCode": "002",
            "Balances": {
                "AccountsReceivable": { "Outstanding": 118.90, "Overdue": 136.90 },
                "AccountsPayable": { "Outstanding": -43.60, "Overdue": 40.00 }
            },
            "ContactPersons": [
                { "FirstName": "Sue", "LastName": "Johnson", "EmailAddress": "sue.johnson@krave.com", "IncludeInEmails": true }
            ],
            "HasAttachments": false,
            "HasValidationErrors": false
        }]
    })
}

type Shared = Arc<Mutex<Inner>>;

/// Error bodies in each vendor's documented shape (HubSpot's error object, Intuit's `Fault`,
/// Xero's problem details).
fn vendor_error(vendor: Vendor, status: StatusCode, message: &str) -> Value {
    match vendor {
        Vendor::Hubspot => json!({
            "status": "error", "message": message,
            "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf",
            "category": match status.as_u16() { 404 => "OBJECT_NOT_FOUND", 429 => "RATE_LIMITS", 401 => "INVALID_AUTHENTICATION", _ => "INTERNAL_ERROR" },
        }),
        Vendor::Quickbooks => json!({
            "Fault": { "Error": [{ "Message": message, "Detail": message, "code": status.as_u16().to_string() }],
                       "type": if status == StatusCode::UNAUTHORIZED { "AUTHENTICATION" } else { "SERVICE" } },
            "time": "2015-07-23T11:07:55.772-07:00",
        }),
        Vendor::Xero => json!({
            "Title": status.canonical_reason().unwrap_or("Error"), "Status": status.as_u16(), "Detail": message,
        }),
    }
}

/// Every API read: scripted faults first, then the bearer token, then the record.
async fn read(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_owned();
    let Some(vendor) = Vendor::of_path(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let bearer = header("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
    let mut inner = shared.lock().expect("vendor mock lock");
    let fault = inner.faults.get_mut(&vendor).and_then(VecDeque::pop_front);
    let mut extra_headers = Vec::new();
    let (status, body) = match fault {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, vendor_error(vendor, status, "scripted failure"))
        }
        Some(Fault::RateLimited { retry_after }) => {
            extra_headers.push(("retry-after", retry_after.to_string()));
            let status = StatusCode::TOO_MANY_REQUESTS;
            (
                status,
                vendor_error(vendor, status, "You have reached your secondly limit."),
            )
        }
        fault => {
            let tokens = inner.tokens.entry(vendor).or_default();
            if fault == Some(Fault::RevokeToken)
                && let Some(token) = &bearer
            {
                tokens.valid.remove(token);
            }
            let authorised = bearer.as_ref().is_some_and(|t| tokens.valid.contains(t));
            if !authorised {
                let status = StatusCode::UNAUTHORIZED;
                (
                    status,
                    vendor_error(
                        vendor,
                        status,
                        "TokenExpired: the access token is not valid",
                    ),
                )
            } else if vendor == Vendor::Xero && header("xero-tenant-id").is_none() {
                let status = StatusCode::FORBIDDEN;
                (
                    status,
                    vendor_error(
                        vendor,
                        status,
                        "AuthorizationUnsuccessful: no xero-tenant-id",
                    ),
                )
            } else {
                match inner.records.get(&path) {
                    Some(record) => (StatusCode::OK, record.clone()),
                    // Intuit answers a missing entity with 400 "Object Not Found" (code 610).
                    None if vendor == Vendor::Quickbooks => {
                        let status = StatusCode::BAD_REQUEST;
                        (status, vendor_error(vendor, status, "Object Not Found"))
                    }
                    None => {
                        let status = StatusCode::NOT_FOUND;
                        (status, vendor_error(vendor, status, "resource not found"))
                    }
                }
            }
        }
    };
    inner.seen.push(Seen {
        vendor,
        method: method.to_string(),
        path,
        query: uri.query().unwrap_or_default().to_owned(),
        bearer,
        accept: header("accept"),
        xero_tenant_id: header("xero-tenant-id"),
        status: status.as_u16(),
    });
    let mut response = (status, axum::Json(body)).into_response();
    for (name, value) in extra_headers {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The three token endpoints: `grant_type=refresh_token` with the current refresh token, client
/// credentials as HTTP Basic (Intuit, Xero) or form fields (HubSpot).
async fn token(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let vendor = match uri.path() {
        p if p == Vendor::Hubspot.token_path() => Vendor::Hubspot,
        p if p == Vendor::Quickbooks.token_path() => Vendor::Quickbooks,
        _ => Vendor::Xero,
    };
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let client_ok = match vendor {
        Vendor::Hubspot => {
            form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
                && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        }
        _ => basic.as_deref() == Some(&format!("{CLIENT_ID}:{CLIENT_SECRET}")),
    };
    let mut inner = shared.lock().expect("vendor mock lock");
    let tokens = inner.tokens.entry(vendor).or_default();
    // Intuit and Xero rotate the refresh token and refuse the old one from then on.
    let (access, refresh) =
        match tokens.grant(vendor.name(), client_ok, &form, vendor != Vendor::Hubspot) {
            Ok(issued) => issued,
            Err(refusal) => return mock_oauth::refused(refusal),
        };
    // Answer shapes from each vendor's OAuth2 documentation.
    let body = match vendor {
        Vendor::Hubspot => json!({
            "token_type": "bearer", "refresh_token": refresh, "access_token": access, "expires_in": 1800,
        }),
        Vendor::Quickbooks => json!({
            "token_type": "bearer", "expires_in": 3600, "refresh_token": refresh,
            "x_refresh_token_expires_in": 8_726_400, "access_token": access,
        }),
        Vendor::Xero => json!({
            "id_token": "eyJhbGciOi.test.id-token", "access_token": access, "expires_in": 1800,
            "token_type": "Bearer", "refresh_token": refresh,
            "scope": "openid profile email accounting.contacts.read offline_access",
        }),
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}
