import Crypto
import Foundation
import Testing

@testable import FulcrumShield

private let key = SymmetricKey(data: Array(repeating: UInt8(9), count: 32))
private let userAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
private let now: UInt64 = 1_767_225_600

/// `node`'s path, or nil when it is not installed (the tests that run the page's JavaScript
/// then skip).
private let nodePath: String? = {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    return path.split(separator: ":")
        .map { "\($0)/node" }
        .first { FileManager.default.isExecutableFile(atPath: $0) }
}()

/// Runs a script in node and returns its standard output.
private func runNode(_ script: String) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-shield-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("script.js")
    try script.write(to: file, atomically: true, encoding: .utf8)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: nodePath!)
    process.arguments = [file.path]
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let stderr = String(decoding: errorData, as: UTF8.self)
    #expect(process.terminationStatus == 0, "node failed: \(stderr)")
    return String(decoding: data, as: UTF8.self)
}

extension String {
    fileprivate subscript(offset: Int) -> Character { self[index(startIndex, offsetBy: offset)] }
}

/// A JavaScript string literal for `text` (JSON is valid JavaScript).
private func jsString(_ text: String) throws -> String {
    String(decoding: try JSONEncoder().encode(text), as: UTF8.self)
}

/// Undoes `ChallengePage.escapeHTML`.
private func unescapeHTML(_ text: String) -> String {
    text.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
        .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
        .replacingOccurrences(of: "&amp;", with: "&")
}

/// The value of the attribute `name` of the first tag containing `marker`.
private func attribute(_ name: String, ofTagContaining marker: String, in html: String) -> String? {
    guard let markerRange = html.range(of: marker),
        let tagStart = html[..<markerRange.lowerBound].range(of: "<", options: .backwards),
        let tagEnd = html[markerRange.upperBound...].range(of: ">")
    else { return nil }
    let tag = html[tagStart.lowerBound..<tagEnd.upperBound]
    guard let start = tag.range(of: " \(name)=\"") else { return nil }
    let rest = tag[start.upperBound...]
    guard let end = rest.firstIndex(of: "\"") else { return nil }
    return unescapeHTML(String(rest[..<end]))
}

@Suite struct ChallengePageTests {
    let work = ProofOfWork(key: key)

    func issue(difficulty: Int) -> ProofOfWork.Challenge {
        var random = SplitMix64(seed: 5)
        return work.issue(client: ClientPrefix(address: "198.51.100.4"), userAgent: userAgent, now: now, difficulty: difficulty, using: &random)
    }

    @Test("the page is self-contained: no URL to load, inline script and style, a noscript notice")
    func selfContained() {
        let html = ChallengePage.html(
            challenge: issue(difficulty: 16).value,
            difficulty: 16,
            verifyPath: "/.fulcrum/verify",
            returnTo: "/shop?item=1"
        )
        #expect(!html.contains("http://"))
        #expect(!html.contains("https://"))
        #expect(!html.contains(" src="))
        #expect(!html.contains("<link"))
        #expect(!html.contains("@import"))
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<noscript><p>JavaScript is required"))
        #expect(html.contains("<form id=\"fulcrum-form\" method=\"get\" action=\"/.fulcrum/verify\" data-difficulty=\"16\">"))
        #expect(html.contains("<input type=\"hidden\" name=\"return_to\" value=\"/shop?item=1\">"))
        // The script is the same for every page: nothing is interpolated into JavaScript.
        #expect(html.contains("<script>\(ChallengePage.script)</script>"))
        #expect(html.components(separatedBy: "<script").count == 2)
    }

    @Test("embedded values are escaped for HTML attributes")
    func escaping() {
        let hostile = #"x"><script>alert('1')</script>&"#
        let html = ChallengePage.html(challenge: hostile, difficulty: 3, verifyPath: hostile, returnTo: hostile)
        let escaped = "x&quot;&gt;&lt;script&gt;alert(&#39;1&#39;)&lt;/script&gt;&amp;"
        #expect(html.contains("name=\"challenge\" value=\"\(escaped)\""))
        #expect(html.contains("action=\"\(escaped)\""))
        #expect(html.contains("name=\"return_to\" value=\"\(escaped)\""))
        #expect(!html.contains("alert('1')"))
        #expect(html.components(separatedBy: "<script").count == 2)
        #expect(attribute("value", ofTagContaining: "name=\"challenge\"", in: html) == hostile)
    }

    @Test("a real challenge appears in the page exactly (its alphabet needs no escaping)")
    func challengeEmbedded() {
        let challenge = issue(difficulty: 10)
        let html = ChallengePage.html(challenge: challenge.value, difficulty: 10, verifyPath: "/v", returnTo: "/")
        #expect(html.contains("<input type=\"hidden\" name=\"challenge\" value=\"\(challenge.value)\">"))
    }

    @Test("the CSP allows exactly the page's script and style by hash")
    func contentSecurityPolicy() {
        let scriptHash = Data(SHA256.hash(data: Array(ChallengePage.script.utf8))).base64EncodedString()
        let styleHash = Data(SHA256.hash(data: Array(ChallengePage.style.utf8))).base64EncodedString()
        #expect(
            ChallengePage.contentSecurityPolicy
                == "default-src 'none'; script-src 'sha256-\(scriptHash)'; style-src 'sha256-\(styleHash)'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        )
        let html = ChallengePage.html(challenge: "c", difficulty: 1, verifyPath: "/v", returnTo: "/")
        #expect(html.contains("<style>\(ChallengePage.style)</style>"))
    }

    @Test(
        "return paths stay on the site",
        arguments: [
            ("/", "/"), ("/shop?item=1#top", "/shop?item=1#top"), ("/a/b/c", "/a/b/c"),
            ("", "/"), ("shop", "/"), ("//evil.example/", "/"), ("/\\evil.example", "/"),
            ("/a\\b", "/"), ("javascript:alert(1)", "/"), ("/a b", "/"), ("/a\nb", "/"), ("/a\u{7f}", "/"),
            ("https:evil", "/"),
        ]
    )
    func safeReturnPath(candidate: String, expected: String) {
        #expect(ChallengePage.safeReturnPath(candidate) == expected)
    }

    @Test("return paths longer than 2,048 bytes fall back to /")
    func longReturnPath() {
        let long = "/" + String(repeating: "a", count: 2047)
        #expect(ChallengePage.safeReturnPath(long) == long)
        #expect(ChallengePage.safeReturnPath(long + "a") == "/")
    }

    @Test(
        "the JavaScript SHA-256 matches node's own on inputs around every padding boundary",
        .enabled(if: nodePath != nil, "node is not installed: the page's JavaScript is not checked")
    )
    func javaScriptSHA256() throws {
        let script =
            ChallengePage.solverScript + """
                var crypto = require('crypto');
                var failures = [];
                for (var length = 0; length < 300; length++) {
                  var bytes = new Uint8Array(length);
                  for (var i = 0; i < length; i++) bytes[i] = (i * 131 + length * 7) & 0xff;
                  var ours = Buffer.from(fulcrumSha256(bytes)).toString('hex');
                  var theirs = crypto.createHash('sha256').update(bytes).digest('hex');
                  if (ours !== theirs) failures.push(length);
                }
                var abc = Buffer.from(fulcrumSha256(new TextEncoder().encode('abc'))).toString('hex');
                process.stdout.write(JSON.stringify({ failures: failures, abc: abc }));
                """
        let output = try runNode(script)
        #expect(output == #"{"failures":[],"abc":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}"#)
    }

    @Test(
        "the JavaScript solver finds the same solution as ProofOfWork.solve, and it verifies",
        .enabled(if: nodePath != nil, "node is not installed: the page's JavaScript is not checked"),
        arguments: [0, 8, 14]
    )
    func javaScriptSolverAgreesWithSwift(difficulty: Int) throws {
        let challenge = issue(difficulty: difficulty)
        let script =
            ChallengePage.solverScript + """
                var solution = null;
                for (var start = 0; solution === null; start += 1000) {
                  solution = fulcrumSolve(\(try jsString(challenge.value)), \(difficulty), start, 1000);
                }
                process.stdout.write(solution);
                """
        let solution = try runNode(script)
        #expect(solution == ProofOfWork.solve(challenge: challenge.value, difficulty: difficulty))
        #expect(work.verify(challenge: challenge.value, solution: solution, clientAddress: "198.51.100.4", userAgent: userAgent, now: now))
    }

    @Test(
        "the JavaScript solver agrees with ProofOfWork.solve for challenges of every length from 0 to 200 bytes",
        .enabled(if: nodePath != nil, "node is not installed: the page's JavaScript is not checked")
    )
    func javaScriptSolverAcrossLengths() throws {
        // Lengths around the block boundaries exercise each path: no whole block before the
        // solution, one or two, and a last part that spills into a second block.
        let challenges = (0...200).map { length in String((0..<length).map { "abcdefghijklmnopqrstuvwxyz0123456789.-_"[$0 % 39] }) }
        let script =
            ChallengePage.solverScript + """
                var challenges = \(String(decoding: try JSONEncoder().encode(challenges), as: UTF8.self));
                process.stdout.write(challenges.map(function (c) { return fulcrumSolve(c, 7, 0, 1e6); }).join(','));
                """
        let fromNode = try runNode(script).split(separator: ",").map(String.init)
        let fromSwift = challenges.map { ProofOfWork.solve(challenge: $0, difficulty: 7) }
        #expect(fromNode == fromSwift)
    }

    @Test(
        "the page's own script, run in node against the page's form, submits a solution the server accepts",
        .enabled(if: nodePath != nil, "node is not installed: the page's JavaScript is not checked")
    )
    func pageSubmitsAVerifiedSolution() throws {
        let challenge = issue(difficulty: 12)
        let html = ChallengePage.html(
            challenge: challenge.value,
            difficulty: challenge.difficulty,
            verifyPath: "/.fulcrum/verify",
            returnTo: "/after"
        )
        // What the browser would read from the page: the script, and the form's fields.
        let scriptStart = try #require(html.range(of: "<script>"))
        let scriptEnd = try #require(html.range(of: "</script>"))
        let pageScript = String(html[scriptStart.upperBound..<scriptEnd.lowerBound])
        let challengeValue = try #require(attribute("value", ofTagContaining: "name=\"challenge\"", in: html))
        let returnTo = try #require(attribute("value", ofTagContaining: "name=\"return_to\"", in: html))
        let difficulty = try #require(attribute("data-difficulty", ofTagContaining: "id=\"fulcrum-form\"", in: html))
        let action = try #require(attribute("action", ofTagContaining: "id=\"fulcrum-form\"", in: html))
        #expect(challengeValue == challenge.value)

        // A minimal DOM: the form and its fields; submit() prints what the browser would post.
        let harness = """
            var form = {
              elements: { challenge: { value: \(try jsString(challengeValue)) }, solution: { value: '' },
                          return_to: { value: \(try jsString(returnTo)) } },
              getAttribute: function (name) { return name === 'data-difficulty' ? \(try jsString(difficulty)) : null; },
              submit: function () {
                process.stdout.write(JSON.stringify({ action: \(try jsString(action)), challenge: this.elements.challenge.value,
                  solution: this.elements.solution.value, return_to: this.elements.return_to.value }));
              }
            };
            var document = { getElementById: function (id) { return id === 'fulcrum-form' ? form : null; } };

            """
        let output = try runNode(harness + pageScript)
        struct Posted: Decodable {
            let action: String
            let challenge: String
            let solution: String
            let return_to: String
        }
        let posted = try JSONDecoder().decode(Posted.self, from: Data(output.utf8))
        #expect(posted.action == "/.fulcrum/verify")
        #expect(posted.challenge == challenge.value)
        #expect(posted.return_to == "/after")
        #expect(posted.solution == ProofOfWork.solve(challenge: challenge.value, difficulty: 12))
        #expect(
            work.verify(challenge: posted.challenge, solution: posted.solution, clientAddress: "198.51.100.4", userAgent: userAgent, now: now + 1)
        )
    }
}
