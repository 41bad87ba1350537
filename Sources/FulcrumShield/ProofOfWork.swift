import Crypto

/// Stateless proof-of-work challenges: the server hands out a signed challenge, the client
/// finds a `solution` such that SHA-256(`challenge` ‖ `:` ‖ `solution`) starts with
/// `difficulty` zero bits, and the server checks the answer without having stored anything.
///
/// A real browser pays a fraction of a second once (then holds a `ClearanceCookie`); a bot
/// farm pays it for every identity it wants to present, and a client without JavaScript cannot
/// pay at all. Each extra bit of difficulty doubles the expected work: 2^difficulty hashes.
/// The page's pure-JavaScript SHA-256 does roughly a million hashes a second on a desktop
/// and a few hundred thousand on a phone, so 16 (65,536 hashes expected) costs well under a
/// second everywhere; 20 is a noticeable wait on phones.
///
/// ## Format
///
/// `1.<expiry>.<difficulty>.<nonce>.<fingerprint>.<mac>`:
/// - `1`: the format version;
/// - `<expiry>`: Unix time in seconds after which the challenge is no longer accepted;
/// - `<difficulty>`: the zero bits required, decimal;
/// - `<nonce>`: 12 random bytes, base64url, so no two challenges are alike and no work can
///   be done before the challenge is received;
/// - `<fingerprint>`: the client's keyed fingerprint (see `TokenSigner`);
/// - `<mac>`: HMAC-SHA256(key, `"fulcrum-pow" ‖ 0x00 ‖` everything before it).
///
/// The difficulty is inside the signed text, so a client cannot lower it; the fingerprint is
/// too, so a solved challenge is worth nothing to another client. Being stateless, a challenge
/// can be answered more than once until it expires; that only yields more cookies for the
/// same client, which it could have anyway.
package struct ProofOfWork: Sendable {
    /// A challenge to send to a client.
    package struct Challenge: Hashable, Sendable {
        /// The text the client hashes and sends back.
        package let value: String
        /// The zero bits a solution needs.
        package let difficulty: Int
        /// Unix time, seconds, from which the challenge is refused.
        package let expiresAt: UInt64
    }

    /// Why an answer was or was not accepted (for metrics and logs; `verify` says yes or no).
    package enum Verdict: Hashable, Sendable {
        case valid
        /// The challenge or the solution is not of the expected shape.
        case malformed
        /// The challenge was not signed with this key (made up or altered, such as a lowered
        /// difficulty).
        case forged
        /// The challenge was issued to another network prefix or User-Agent.
        case otherClient
        /// The challenge's validity ran out.
        case expired
        /// The hash does not have enough leading zero bits.
        case insufficientWork
    }

    /// The largest difficulty `issue` accepts: 2^32 hashes is already hours of a browser's time.
    package static let maximumDifficulty = 32
    /// The longest solution accepted, which bounds the hashing a request can cause.
    package static let maximumSolutionLength = 32
    static let label = "fulcrum-pow"
    static let version = "1"
    static let nonceLength = 12

    /// Seconds a challenge stays valid after it is issued.
    package let validity: UInt64
    private let signer: TokenSigner

    /// - Parameters:
    ///   - key: the secret; it may be the one `ClearanceCookie` uses (the two sign under
    ///     different labels).
    ///   - validity: seconds a client has to solve and send back a challenge.
    package init(key: SymmetricKey, validity: UInt64 = 300) {
        signer = TokenSigner(key: key)
        self.validity = validity
    }

    /// A new challenge for a client, with a nonce from the system's random source.
    ///
    /// - Parameters:
    ///   - now: Unix time, seconds.
    ///   - difficulty: leading zero bits required, 0…`maximumDifficulty`.
    package func issue(clientAddress: String, userAgent: String, now: UInt64, difficulty: Int) -> Challenge {
        var random = SystemRandomNumberGenerator()
        return issue(client: ClientPrefix(address: clientAddress), userAgent: userAgent, now: now, difficulty: difficulty, using: &random)
    }

    /// A new challenge with a nonce drawn from `random` (deterministic in tests). The nonce
    /// only needs to be unpredictable enough that challenges do not repeat; the MAC is what
    /// keeps clients from making their own.
    package func issue(
        client: ClientPrefix,
        userAgent: String,
        now: UInt64,
        difficulty: Int,
        using random: inout some RandomNumberGenerator
    ) -> Challenge {
        precondition((0...Self.maximumDifficulty).contains(difficulty), "difficulty out of range")
        let expiry = now + validity
        var nonce: [UInt8] = []
        nonce.reserveCapacity(Self.nonceLength)
        for _ in 0..<Self.nonceLength { nonce.append(random.next()) }
        let fingerprint = signer.fingerprint(client: client, userAgent: userAgent)
        let payload = "\(Self.version).\(expiry).\(difficulty).\(Base64URL.encode(nonce)).\(fingerprint)"
        return Challenge(value: signer.sign(payload, label: Self.label), difficulty: difficulty, expiresAt: expiry)
    }

    /// Whether `solution` answers `challenge` for this client at `now` (Unix seconds).
    package func verify(challenge: String, solution: String, clientAddress: String, userAgent: String, now: UInt64) -> Bool {
        check(
            challenge: Substring(challenge),
            solution: Substring(solution),
            client: ClientPrefix(address: clientAddress),
            userAgent: userAgent,
            now: now
        ) == .valid
    }

    /// The verdict on an answer, in the order the checks run: shape, signature, client,
    /// expiry, and only then the hash, so that unsigned challenges cost one HMAC and nothing
    /// more.
    package func check(challenge: Substring, solution: Substring, client: ClientPrefix, userAgent: String, now: UInt64) -> Verdict {
        guard let (fields, authentic) = signer.open(challenge, label: Self.label, fieldCount: 5),
            fields[0] == Self.version,
            let expiry = parseDecimal(fields[1]),
            let difficulty = parseDecimal(fields[2]), difficulty <= Self.maximumDifficulty,
            fields[3].utf8.count == Base64URL.encodedLength(of: Self.nonceLength),
            Self.isValidSolution(solution)
        else { return .malformed }
        guard authentic else { return .forged }
        guard constantTimeEquals(fields[4], signer.fingerprint(client: client, userAgent: userAgent)) else {
            return .otherClient
        }
        guard now < expiry else { return .expired }
        let zeros = Self.leadingZeroBits(SHA256.hash(data: Self.workInput(challenge: challenge.utf8, solution: solution.utf8)))
        return zeros >= Int(difficulty) ? .valid : .insufficientWork
    }

    /// Finds the smallest decimal solution (`"0"`, `"1"`, …) for a challenge, exactly as the
    /// challenge page's JavaScript does. For tests and benchmarks: expect 2^difficulty hashes.
    package static func solve(challenge: String, difficulty: Int) -> String {
        var counter: UInt64 = 0
        while true {
            let solution = String(counter)
            if leadingZeroBits(SHA256.hash(data: workInput(challenge: challenge.utf8, solution: solution.utf8))) >= difficulty {
                return solution
            }
            counter += 1
        }
    }

    /// Solutions are 1…32 characters of the base64url alphabet: the page sends decimal
    /// digits, and nothing in it needs escaping in a form body.
    static func isValidSolution(_ solution: Substring) -> Bool {
        (1...maximumSolutionLength).contains(solution.utf8.count)
            && solution.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                    UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                    true
                default:
                    false
                }
            }
    }

    static func workInput(challenge: some Collection<UInt8>, solution: some Collection<UInt8>) -> [UInt8] {
        var input: [UInt8] = []
        input.reserveCapacity(challenge.count + 1 + solution.count)
        input.append(contentsOf: challenge)
        input.append(UInt8(ascii: ":"))
        input.append(contentsOf: solution)
        return input
    }

    static func leadingZeroBits(_ digest: SHA256.Digest) -> Int {
        var zeros = 0
        for byte in digest {
            guard byte == 0 else { return zeros + byte.leadingZeroBitCount }
            zeros += 8
        }
        return zeros
    }
}
