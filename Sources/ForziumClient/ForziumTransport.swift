import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import OpenAPIRuntime

/// The default transport of `ForziumClient`: AsyncHTTPClient, with each request body collected first and written in
/// one piece with the head.
///
/// swift-openapi-async-http-client's transport streams a body from Swift concurrency; when the process's cooperative
/// threads are all busy (a server app, a test runner), the head can reach the gateway while the body waits for a
/// thread, and the gateway answers 408 once a body stalls for its header timeout. Forzium bodies are JSON documents
/// already in memory, so nothing is lost by sending them whole. Responses stream as usual (the /stream rows).
public struct ForziumTransport: ClientTransport {
    public var client: HTTPClient
    public var timeout: TimeAmount

    /// - Parameters:
    ///   - client: Default: AsyncHTTPClient's shared client.
    ///   - timeout: For the whole exchange, including a streamed response.
    public init(client: HTTPClient = .shared, timeout: TimeAmount = .minutes(1)) {
        self.client = client
        self.timeout = timeout
    }

    public struct InvalidURL: Error, CustomStringConvertible {
        public var description: String
    }

    public func send(_ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String) async throws -> (HTTPResponse, HTTPBody?) {
        // The request's path (with its query) goes after the base URL's own path.
        guard var url = URLComponents(string: baseURL.absoluteString), let target = URLComponents(string: request.path ?? "") else {
            throw InvalidURL(description: "\(baseURL) + \(request.path ?? "")")
        }
        url.percentEncodedPath += target.percentEncodedPath
        url.percentEncodedQuery = target.percentEncodedQuery
        guard let address = url.url?.absoluteString else { throw InvalidURL(description: "\(baseURL) + \(request.path ?? "")") }

        var outgoing = HTTPClientRequest(url: address)
        outgoing.method = HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headerFields { outgoing.headers.add(name: field.name.canonicalName, value: field.value) }
        if let body {
            var buffer = ByteBuffer()
            for try await chunk in body { buffer.writeBytes(chunk) }
            outgoing.body = .bytes(buffer)
        }

        let incoming = try await client.execute(outgoing, timeout: timeout)
        var fields = HTTPFields()
        for header in incoming.headers {
            guard let name = HTTPField.Name(header.name) else { continue }
            fields.append(HTTPField(name: name, value: header.value))
        }
        let response = HTTPResponse(status: .init(code: Int(incoming.status.code)), headerFields: fields)
        if request.method == .head { return (response, nil) }
        let length: HTTPBody.Length = fields[.contentLength].flatMap { Int64($0) }.map { .known($0) } ?? .unknown
        return (response, HTTPBody(incoming.body.map { $0.readableBytesView }, length: length, iterationBehavior: .single))
    }
}
