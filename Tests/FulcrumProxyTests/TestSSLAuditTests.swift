import Foundation
import FulcrumWorker
import Testing

/// The default TLS profile as an auditor's scanner sees it: `testssl` (Debian's `testssl.sh`)
/// against a real TLS frontend. Skips, saying so, where `testssl` is not installed (`.ci/run`
/// installs it). Bounded to the checks this is about: protocols, cipher categories, LUCKY13,
/// SWEET32 and BEAST (about a minute on the CI machine).
@Suite("testssl audit", .serialized)
struct TestSSLAuditTests {
    @Test("testssl finds nothing below TLS 1.2, no CBC suite and no LUCKY13 in the default profile")
    func defaultProfilePassesTestSSL() async throws {
        guard let testssl = ExternalTool.find("testssl", alternatives: ["testssl.sh"]) else {
            print("skipped: testssl is not installed (Debian's testssl.sh; .ci/run installs it)")
            return
        }
        let authority = try TestCertificateAuthority()
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try pemFile(try authority.issue(commonName: "localhost", names: ["localhost"]))
            .write(to: directory.appendingPathComponent("localhost.pem"), atomically: true, encoding: .utf8)
        let yaml = { (ports: [Int]) in simpleConfig(ports, frontendExtra: "    tls: { certificates: \"\(directory.path)\" }") }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: yaml) { harness async throws in
            let report = directory.appendingPathComponent("testssl.json")
            let run = try await testssl.run(
                [
                    "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none",
                    "--protocols", "--std", "--lucky13", "--sweet32", "--beast",
                    "--jsonfile", report.path, "127.0.0.1:\(harness.port)",
                ],
                timeout: .seconds(240)
            )
            #expect(!run.timedOut, "testssl did not finish in 240 s: \(run.output)")
            let data = try Data(contentsOf: report)
            let entries = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
            var findings: [String: String] = [:]
            for entry in entries {
                if let id = entry["id"] as? String, let finding = entry["finding"] as? String { findings[id] = finding }
            }
            for old in ["SSLv2", "SSLv3", "TLS1", "TLS1_1"] {
                #expect(findings[old]?.hasPrefix("not offered") == true, "\(old): \(findings[old] ?? "missing")")
            }
            for current in ["TLS1_2", "TLS1_3"] {
                #expect(findings[current]?.hasPrefix("offered") == true, "\(current): \(findings[current] ?? "missing")")
            }
            // cipherlist_AVERAGE is testssl's "Obsolete CBC ciphers (AES, ARIA etc.)".
            for category in [
                "cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW", "cipherlist_3DES_IDEA", "cipherlist_AVERAGE",
            ] {
                #expect(findings[category] == "not offered", "\(category): \(findings[category] ?? "missing")")
            }
            #expect(findings["cipherlist_STRONG"] == "offered")
            for vulnerability in ["LUCKY13", "SWEET32", "BEAST"] {
                #expect(findings[vulnerability]?.hasPrefix("not vulnerable") == true, "\(vulnerability): \(findings[vulnerability] ?? "missing")")
            }
        }
    }
}
