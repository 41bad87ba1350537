import Crypto
import Testing

@testable import FulcrumShield

private let key = SymmetricKey(data: Array(repeating: UInt8(42), count: 32))
private let userAgent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"
private let now: UInt64 = 1_767_225_600
private let client = ClientPrefix(address: "192.0.2.10")

@Suite struct ProofOfWorkTests {
    let work = ProofOfWork(key: key)

    func challenge(difficulty: Int, seed: UInt64 = 1) -> ProofOfWork.Challenge {
        var random = SplitMix64(seed: seed)
        return work.issue(client: client, userAgent: userAgent, now: now, difficulty: difficulty, using: &random)
    }

    /// Leading zero bits of SHA-256(challenge ":" solution), counted independently of the verifier.
    func zeroBits(_ challenge: String, _ solution: String) -> Int {
        let digest = Array(SHA256.hash(data: Array("\(challenge):\(solution)".utf8)))
        var bits = 0
        for bit in 0..<256 {
            guard digest[bit / 8] & (0x80 >> UInt8(bit % 8)) == 0 else { break }
            bits += 1
        }
        return bits
    }

    @Test("the challenge is in the documented format")
    func format() {
        let issued = challenge(difficulty: 12)
        let fields = issued.value.split(separator: ".", omittingEmptySubsequences: false)
        #expect(fields.count == 6)
        #expect(fields[0] == "1")
        #expect(fields[1] == "1767225900")
        #expect(fields[2] == "12")
        #expect(fields[3].count == 16)
        #expect(fields[4].count == 16)
        #expect(fields[5].count == 43)
        #expect(issued.difficulty == 12)
        #expect(issued.expiresAt == now + 300)
        // Deterministic for a seeded random source, different for another seed or the system's.
        #expect(challenge(difficulty: 12, seed: 1) == issued)
        #expect(challenge(difficulty: 12, seed: 2).value != issued.value)
        let system1 = work.issue(clientAddress: "192.0.2.10", userAgent: userAgent, now: now, difficulty: 12)
        let system2 = work.issue(clientAddress: "192.0.2.10", userAgent: userAgent, now: now, difficulty: 12)
        #expect(system1.value != system2.value)
    }

    @Test("a solved challenge verifies; the solution has the required zero bits", arguments: [0, 1, 8, 12])
    func solveAndVerify(difficulty: Int) {
        let issued = challenge(difficulty: difficulty)
        let solution = ProofOfWork.solve(challenge: issued.value, difficulty: difficulty)
        #expect(zeroBits(issued.value, solution) >= difficulty)
        #expect(work.verify(challenge: issued.value, solution: solution, clientAddress: "192.0.2.10", userAgent: userAgent, now: now))
        #expect(
            work.check(challenge: Substring(issued.value), solution: Substring(solution), client: client, userAgent: userAgent, now: now) == .valid
        )
        if difficulty == 0 { #expect(solution == "0") }
    }

    @Test("a wrong solution is .insufficientWork")
    func wrongSolution() {
        let issued = challenge(difficulty: 12)
        let solution = ProofOfWork.solve(challenge: issued.value, difficulty: 12)
        // One bit short: exactly 11 leading zero bits.
        let wrong = (0..<1_000_000).lazy.map(String.init).first { zeroBits(issued.value, $0) == 11 }!
        #expect(wrong != solution)
        #expect(!work.verify(challenge: issued.value, solution: wrong, clientAddress: "192.0.2.10", userAgent: userAgent, now: now))
        #expect(
            work.check(challenge: Substring(issued.value), solution: Substring(wrong), client: client, userAgent: userAgent, now: now)
                == .insufficientWork
        )
    }

    @Test("a challenge is refused from its expiry on")
    func expired() {
        let issued = challenge(difficulty: 4)
        let solution = ProofOfWork.solve(challenge: issued.value, difficulty: 4)
        #expect(
            work.check(challenge: Substring(issued.value), solution: Substring(solution), client: client, userAgent: userAgent, now: now + 299)
                == .valid
        )
        #expect(
            work.check(challenge: Substring(issued.value), solution: Substring(solution), client: client, userAgent: userAgent, now: now + 300)
                == .expired
        )
        #expect(!work.verify(challenge: issued.value, solution: solution, clientAddress: "192.0.2.10", userAgent: userAgent, now: now + 300))
        let quick = ProofOfWork(key: key, validity: 10)
        var random = SplitMix64(seed: 3)
        #expect(quick.issue(client: client, userAgent: userAgent, now: now, difficulty: 1, using: &random).expiresAt == now + 10)
    }

    @Test("a challenge solved for one client is refused from another network or User-Agent")
    func boundToTheClient() {
        let issued = challenge(difficulty: 4)
        let solution = ProofOfWork.solve(challenge: issued.value, difficulty: 4)
        #expect(work.verify(challenge: issued.value, solution: solution, clientAddress: "192.0.2.200", userAgent: userAgent, now: now))
        #expect(!work.verify(challenge: issued.value, solution: solution, clientAddress: "192.0.3.10", userAgent: userAgent, now: now))
        #expect(
            work.check(
                challenge: Substring(issued.value),
                solution: Substring(solution),
                client: ClientPrefix(address: "192.0.3.10"),
                userAgent: userAgent,
                now: now
            ) == .otherClient
        )
        #expect(
            work.check(challenge: Substring(issued.value), solution: Substring(solution), client: client, userAgent: "curl/8.5.0", now: now)
                == .otherClient
        )
    }

    @Test("lowering the difficulty in the challenge breaks its signature")
    func tamperedDifficulty() {
        let issued = challenge(difficulty: 16)
        var fields = issued.value.split(separator: ".").map(String.init)
        fields[2] = "1"
        let lowered = fields.joined(separator: ".")
        let easy = ProofOfWork.solve(challenge: lowered, difficulty: 1)
        #expect(work.check(challenge: Substring(lowered), solution: Substring(easy), client: client, userAgent: userAgent, now: now) == .forged)
        #expect(!work.verify(challenge: lowered, solution: easy, clientAddress: "192.0.2.10", userAgent: userAgent, now: now))
        // Likewise a later expiry, another nonce, or a challenge signed with another key.
        fields = issued.value.split(separator: ".").map(String.init)
        fields[1] = "1767299999"
        #expect(
            work.check(challenge: Substring(fields.joined(separator: ".")), solution: "1", client: client, userAgent: userAgent, now: now) == .forged
        )
        var random = SplitMix64(seed: 1)
        let foreign = ProofOfWork(key: SymmetricKey(size: .bits256)).issue(
            client: client,
            userAgent: userAgent,
            now: now,
            difficulty: 16,
            using: &random
        )
        #expect(work.check(challenge: Substring(foreign.value), solution: "1", client: client, userAgent: userAgent, now: now) == .forged)
    }

    @Test("a challenge is no cookie and a cookie no challenge, under one key")
    func labelsSeparateTokenKinds() {
        let cookie = ClearanceCookie(key: key).issue(client: client, userAgent: userAgent, now: now, ttl: 3600)
        #expect(work.check(challenge: Substring(cookie), solution: "1", client: client, userAgent: userAgent, now: now) == .malformed)
        // Even a payload shaped like a challenge, signed as a cookie, is not one.
        let signer = TokenSigner(key: key)
        let fingerprint = signer.fingerprint(client: client, userAgent: userAgent)
        let shaped = signer.sign("1.1767225900.0.AAAAAAAAAAAAAAAA.\(fingerprint)", label: ClearanceCookie.label)
        #expect(work.check(challenge: Substring(shaped), solution: "1", client: client, userAgent: userAgent, now: now) == .forged)
        let genuine = signer.sign("1.1767225900.0.AAAAAAAAAAAAAAAA.\(fingerprint)", label: ProofOfWork.label)
        #expect(work.check(challenge: Substring(genuine), solution: "1", client: client, userAgent: userAgent, now: now) == .valid)
        let issued = challenge(difficulty: 1)
        #expect(ClearanceCookie(key: key).verify(Substring(issued.value), client: client, userAgent: userAgent, now: now) == .malformed)
    }

    @Test(
        "malformed solutions and challenges are .malformed",
        arguments: [
            ("", "ok"), ("1.2.3.4.5.6", "1"), ("VALID", ""), ("VALID", String(repeating: "1", count: 33)),
            ("VALID", "12 3"), ("VALID", "1:2"), ("VALID", "1%32"), ("VALID", "é"),
        ]
    )
    func malformed(challengeText: String, solution: String) {
        let text = challengeText == "VALID" ? challenge(difficulty: 0).value : challengeText
        #expect(work.check(challenge: Substring(text), solution: Substring(solution), client: client, userAgent: userAgent, now: now) == .malformed)
    }

    @Test("difficulty above the maximum in a challenge is .malformed, the longest solution is accepted")
    func limits() {
        let signer = TokenSigner(key: key)
        let fingerprint = signer.fingerprint(client: client, userAgent: userAgent)
        let tooHard = signer.sign("1.1767225900.33.AAAAAAAAAAAAAAAA.\(fingerprint)", label: ProofOfWork.label)
        #expect(work.check(challenge: Substring(tooHard), solution: "1", client: client, userAgent: userAgent, now: now) == .malformed)
        let issued = challenge(difficulty: 0)
        let longest = Substring(String(repeating: "z", count: ProofOfWork.maximumSolutionLength))
        #expect(work.check(challenge: Substring(issued.value), solution: longest, client: client, userAgent: userAgent, now: now) == .valid)
    }
}
