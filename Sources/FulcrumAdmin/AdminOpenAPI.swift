/// The admin API's OpenAPI 3.1 document, served at `GET /api/openapi.yaml`.
///
/// One copy, embedded from `Resources/admin-api.yaml` (`docs/admin-api.yaml` links to it):
/// `AdminAPITests` checks that every route the API registers is in it, and the reverse.
enum AdminOpenAPI {
    static let document = String(decoding: PackageResources.admin_api_yaml, as: UTF8.self)
}
