import Crypto
import Testing

@testable import FulcrumShield

private let key = SymmetricKey(data: Array(repeating: UInt8(7), count: 32))
private let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
private let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
private let now: UInt64 = 1_767_225_600  // 2026-01-01T00:00:00Z
private let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
private let zeroFingerprint = String(repeating: "A", count: 16)
private let zeroMAC = String(repeating: "A", count: 43)

@Suite struct ClearanceCookieTests {
    let cookies = ClearanceCookie(key: key)

    @Test("an issued cookie is valid for its client until it expires, in the documented format")
    func validUntilExpiry() {
        let value = cookies.issue(clientAddress: "203.0.113.9", userAgent: chrome, now: now, ttl: 3600)
        let fields = value.split(separator: ".", omittingEmptySubsequences: false)
        #expect(fields.count == 4)
        #expect(fields[0] == "1")
        #expect(fields[1] == "1767229200")
        #expect(fields[2].count == 16)
        #expect(fields[3].count == 43)
        #expect(value.count == 73)
        #expect(value.utf8.allSatisfy { $0 == UInt8(ascii: ".") || alphabet.contains($0) })

        #expect(cookies.verify(value, clientAddress: "203.0.113.9", userAgent: chrome, now: now) == .valid)
        #expect(cookies.verify(value, clientAddress: "203.0.113.9", userAgent: chrome, now: now + 3599) == .valid)
        #expect(cookies.verify(value, clientAddress: "203.0.113.9", userAgent: chrome, now: now + 3600) == .expired)
        #expect(cookies.verify(value, clientAddress: "203.0.113.9", userAgent: chrome, now: now + 999_999) == .expired)
    }

    @Test("issuing is deterministic: same client, time and key give the same cookie; another key verifies none")
    func keyMatters() {
        let first = cookies.issue(clientAddress: "203.0.113.9", userAgent: chrome, now: now, ttl: 60)
        let second = cookies.issue(clientAddress: "203.0.113.9", userAgent: chrome, now: now, ttl: 60)
        #expect(first == second)
        let other = ClearanceCookie(key: SymmetricKey(data: Array(repeating: UInt8(8), count: 32)))
        #expect(other.verify(first, clientAddress: "203.0.113.9", userAgent: chrome, now: now) == .forged)
    }

    @Test("changing any single character never yields a valid cookie, and a changed MAC is .forged")
    func everyFlippedCharacterIsRefused() {
        let value = Array(cookies.issue(clientAddress: "203.0.113.9", userAgent: chrome, now: now, ttl: 3600).utf8)
        var verdicts: [ClearanceCookie.Verdict: Int] = [:]
        for index in value.indices {
            for replacement in Array("019AZaz-_.x".utf8) where replacement != value[index] {
                var changed = value
                changed[index] = replacement
                let verdict = cookies.verify(String(decoding: changed, as: UTF8.self), clientAddress: "203.0.113.9", userAgent: chrome, now: now)
                #expect(verdict == .forged || verdict == .malformed, "index \(index) → \(Character(Unicode.Scalar(replacement)))")
                verdicts[verdict, default: 0] += 1
            }
        }
        #expect(verdicts[.forged, default: 0] > 400)
        // One flipped bit in the middle of the MAC.
        var flipped = value
        flipped[value.count - 20] = flipped[value.count - 20] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(cookies.verify(String(decoding: flipped, as: UTF8.self), clientAddress: "203.0.113.9", userAgent: chrome, now: now) == .forged)
        // A later expiry written in by hand.
        var fields = String(decoding: value, as: UTF8.self).split(separator: ".").map(String.init)
        fields[1] = "1767299999"
        let text = fields.joined(separator: ".")
        #expect(cookies.verify(text, clientAddress: "203.0.113.9", userAgent: chrome, now: now) == .forged)
    }

    @Test("the MAC's unused low bits must be zero: another spelling of the same MAC is malformed")
    func canonicalMAC() {
        let value = cookies.issue(clientAddress: "203.0.113.9", userAgent: chrome, now: now, ttl: 3600)
        // 32 bytes in 43 characters: the last character carries 4 bits and 2 spare ones.
        let last = value.utf8.last!
        let index = alphabet.firstIndex(of: last)!
        #expect(index & 0b11 == 0)
        let sibling = alphabet[index | 1]
        let respelled = String(value.dropLast()) + String(Character(Unicode.Scalar(sibling)))
        #expect(cookies.verify(respelled, clientAddress: "203.0.113.9", userAgent: chrome, now: now) == .malformed)
    }

    @Test("a cookie moved to another network or another User-Agent is .otherClient; the same /24 or /64 is fine")
    func boundToTheClient() {
        let ipv4 = cookies.issue(clientAddress: "203.0.113.9", userAgent: chrome, now: now, ttl: 3600)
        #expect(cookies.verify(ipv4, clientAddress: "203.0.113.250", userAgent: chrome, now: now) == .valid)
        #expect(cookies.verify(ipv4, clientAddress: "::ffff:203.0.113.1", userAgent: chrome, now: now) == .valid)
        #expect(cookies.verify(ipv4, clientAddress: "203.0.114.9", userAgent: chrome, now: now) == .otherClient)
        #expect(cookies.verify(ipv4, clientAddress: "198.51.100.9", userAgent: chrome, now: now) == .otherClient)
        #expect(cookies.verify(ipv4, clientAddress: "203.0.113.9", userAgent: firefox, now: now) == .otherClient)
        #expect(cookies.verify(ipv4, clientAddress: "203.0.113.9", userAgent: chrome + " ", now: now) == .otherClient)
        #expect(cookies.verify(ipv4, clientAddress: "203.0.113.9", userAgent: "", now: now) == .otherClient)
        // Another client and expired: the client is checked first.
        #expect(cookies.verify(ipv4, clientAddress: "198.51.100.9", userAgent: chrome, now: now + 7200) == .otherClient)

        let ipv6 = cookies.issue(clientAddress: "2001:db8:5:6::1", userAgent: chrome, now: now, ttl: 3600)
        #expect(cookies.verify(ipv6, clientAddress: "2001:db8:5:6:a:b:c:d", userAgent: chrome, now: now) == .valid)
        #expect(cookies.verify(ipv6, clientAddress: "2001:db8:5:7::1", userAgent: chrome, now: now) == .otherClient)

        let prefix = ClientPrefix(address: "203.0.113.77")
        let viaPrefix = cookies.issue(client: prefix, userAgent: chrome, now: now, ttl: 3600)
        #expect(viaPrefix == ipv4)
        #expect(cookies.verify(Substring(viaPrefix), client: prefix, userAgent: chrome, now: now) == .valid)
    }

    @Test(
        "text that is not a cookie of this format is .malformed",
        arguments: [
            "", ".", "...", "garbage", "1.2.3", "1.1767229200.\(zeroFingerprint)",
            "2.1767229200.\(zeroFingerprint).\(zeroMAC)",
            "1.01767229200.\(zeroFingerprint).\(zeroMAC)",
            "1.+1767229200.\(zeroFingerprint).\(zeroMAC)",
            "1.99999999999999999999.\(zeroFingerprint).\(zeroMAC)",
            "1.1767229200..\(zeroMAC)",
            "1.1767229200.\(zeroFingerprint).\(zeroMAC.dropLast())",
            "1.1767229200.\(zeroFingerprint).\(zeroMAC)A",
            "1.1767229200.\(zeroFingerprint).\(zeroMAC.dropLast())=",
            "1.1767229200.\(zeroFingerprint).\(zeroMAC.dropLast())+",
            "1.1767229200.AAAA.\(zeroFingerprint).\(zeroMAC)",
        ]
    )
    func malformed(text: String) {
        #expect(cookies.verify(text, clientAddress: "203.0.113.9", userAgent: chrome, now: now) == .malformed)
    }

    @Test("a well-formed cookie nobody signed is .forged")
    func madeUp() {
        let madeUp = "1.1767229200.\(zeroFingerprint).\(zeroMAC)"
        #expect(cookies.verify(madeUp, clientAddress: "203.0.113.9", userAgent: chrome, now: now) == .forged)
        let long = String(repeating: "9", count: 600)
        #expect(cookies.verify(long, clientAddress: "203.0.113.9", userAgent: chrome, now: now) == .malformed)
    }

    @Test("the cookie is found in a Cookie header among others")
    func cookieHeader() {
        #expect(ClearanceCookie.value(inCookieHeader: "a=1; fulcrum_clearance=1.2.x.y; b=2") == "1.2.x.y")
        #expect(ClearanceCookie.value(inCookieHeader: "fulcrum_clearance=abc") == "abc")
        #expect(ClearanceCookie.value(inCookieHeader: "x=1;fulcrum_clearance=abc ;y") == "abc")
        #expect(ClearanceCookie.value(inCookieHeader: "fulcrum_clearance=first; fulcrum_clearance=second") == "first")
        #expect(ClearanceCookie.value(inCookieHeader: "not_fulcrum_clearance=abc; fulcrum_clearance_x=1") == nil)
        #expect(ClearanceCookie.value(inCookieHeader: "") == nil)
        #expect(ClearanceCookie.value(inCookieHeader: "fulcrum_clearance=") == "")
    }

    @Test("Set-Cookie carries Max-Age, Path, HttpOnly, SameSite=Lax, and Secure when asked")
    func setCookie() {
        #expect(
            ClearanceCookie.setCookieHeader(value: "v", ttl: 3600, secure: false)
                == "fulcrum_clearance=v; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax"
        )
        #expect(
            ClearanceCookie.setCookieHeader(value: "v", ttl: 60, secure: true)
                == "fulcrum_clearance=v; Max-Age=60; Path=/; HttpOnly; SameSite=Lax; Secure"
        )
    }
}
