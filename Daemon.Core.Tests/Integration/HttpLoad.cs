namespace Daemon.Core.Tests.Integration;

/// <summary>
/// HTTP/1.1 load on 127.0.0.1: clients that open a new connection per request (<c>Connection:
/// close</c>; half of them send it 10 ms after connecting) and keep-alive clients. A request counts as served only with a whole 200 response
/// whose body starts as expected. A keep-alive client retries a request once, on a new
/// connection, when the server closed its reused connection before any byte of a response (as
/// HTTP clients do); anything else is a failure, with its reason.
/// </summary>
internal sealed class HttpLoad : IDisposable
{
    private static readonly byte[] _close = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    private static readonly byte[] _keepAlive = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    private readonly int _port;
    private readonly string _bodyStart;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string> _failures = new();
    private readonly Task[] _clients;
    private int _served;
    private int _retries;

    public HttpLoad(int port, int newConnectionClients, int keepAliveClients, string bodyStart)
    {
        _port = port;
        _bodyStart = bodyStart;
        // Half of the new-connection clients send their request a moment after connecting, as a
        // slow or TLS client would: a connection accepted whose request has not arrived yet.
        _clients = Enumerable.Range(0, newConnectionClients).Select(i => Task.Run(() => NewConnectionsAsync(slow: i % 2 == 1)))
            .Concat(Enumerable.Range(0, keepAliveClients).Select(_ => Task.Run(KeepAliveAsync)))
            .ToArray();
    }

    public int Served => Volatile.Read(ref _served);

    /// <summary>Requests a keep-alive client sent again after the server closed an idle connection.</summary>
    public int Retries => Volatile.Read(ref _retries);

    public List<string> Failures
    {
        get
        {
            lock (_failures)
            {
                return new(_failures);
            }
        }
    }

    /// <summary>Waits until <paramref name="more"/> more requests than now were served.</summary>
    public bool WaitForMore(int more, TimeSpan? timeout = null)
    {
        int target = Served + more;
        return ExampleDaemon.Eventually(() => Served >= target, timeout ?? TimeSpan.FromSeconds(60), pollMilliseconds: 5);
    }

    public void Stop()
    {
        _stop.Cancel();
        Task.WaitAll(_clients, TimeSpan.FromSeconds(60));
    }

    public void Dispose()
    {
        if (!_stop.IsCancellationRequested)
        {
            Stop();
        }

        _stop.Dispose();
    }

    public override string ToString() => $"{Served} served, {Retries} keep-alive retries, {Failures.Count} failed: {string.Join("; ", Failures.Take(5))}";

    private async Task NewConnectionsAsync(bool slow)
    {
        while (!_stop.IsCancellationRequested)
        {
            // Which connection failed, and when: its client port and time find it in a trace or a log.
            string connection = "not connected";
            var since = Stopwatch.StartNew();
            try
            {
                using Socket socket = await ConnectAsync();
                connection = $"from port {((IPEndPoint)socket.LocalEndPoint!).Port}";
                since.Restart();
                if (slow)
                {
                    await Task.Delay(10);
                }

                await socket.SendAsync(_close);
                Check(await ReadResponseAsync(socket, new Buffer()));
            }
            catch (Exception e) when (e is SocketException or IOException or ClosedException or OperationCanceledException)
            {
                Fail(string.Create(CultureInfo.InvariantCulture, $"new connection ({connection}, {since.ElapsedMilliseconds} ms, at {DateTime.UtcNow:HH:mm:ss.fff}): {e.Message}"));
            }
        }
    }

    private async Task KeepAliveAsync()
    {
        Socket? socket = null;
        var buffer = new Buffer();
        while (!_stop.IsCancellationRequested)
        {
            bool retried = false;
            while (true)
            {
                bool reused = socket is not null;
                try
                {
                    if (socket is null)
                    {
                        socket = await ConnectAsync();
                        buffer = new Buffer();
                    }

                    await socket.SendAsync(_keepAlive);
                    Response response = await ReadResponseAsync(socket, buffer);
                    Check(response);
                    if (response.Close)
                    {
                        socket.Dispose();
                        socket = null;
                    }

                    break;
                }
                catch (Exception e) when (e is SocketException or IOException or ClosedException or OperationCanceledException)
                {
                    socket?.Dispose();
                    socket = null;
                    // A send that fails, or a close before any byte came back: the request was not answered.
                    bool beforeResponse = e is SocketException || (e is ClosedException closed && closed.BeforeResponse);
                    if (reused && beforeResponse && !retried)
                    {
                        // The server closed the idle connection: HTTP clients send the request again.
                        retried = true;
                        Interlocked.Increment(ref _retries);
                        continue;
                    }

                    Fail($"keep-alive{(retried ? " (retried)" : "")}: {e.Message}");
                    break;
                }
            }
        }

        socket?.Dispose();
    }

    private async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _port), timeout.Token);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private void Check(Response response)
    {
        if (response.Status == 200 && response.Body.StartsWith(_bodyStart, StringComparison.Ordinal))
        {
            Interlocked.Increment(ref _served);
        }
        else
        {
            Fail($"{response.Status} {response.Body}");
        }
    }

    private void Fail(string why)
    {
        lock (_failures)
        {
            _failures.Add(why);
        }
    }

    /// <summary>One response: Content-Length, chunked, or up to the close.</summary>
    private static async Task<Response> ReadResponseAsync(Socket socket, Buffer buffer)
    {
        bool any = buffer.Length > 0;
        int headEnd;
        while ((headEnd = buffer.IndexOf("\r\n\r\n")) < 0)
        {
            if (!await buffer.FillAsync(socket))
            {
                throw new ClosedException(!any, any ? "closed in the headers" : "closed without a response");
            }

            any = true;
        }

        string[] head = buffer.Take(headEnd + 4).Split("\r\n");
        int status = int.Parse(head[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var headers = head.Skip(1).Where(l => l.Contains(':', StringComparison.Ordinal))
            .ToDictionary(l => l[..l.IndexOf(':', StringComparison.Ordinal)].Trim().ToLowerInvariant(), l => l[(l.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim().ToLowerInvariant());
        bool close = headers.GetValueOrDefault("connection") == "close";
        var body = new StringBuilder();
        if (headers.TryGetValue("content-length", out string? length))
        {
            int n = int.Parse(length, System.Globalization.CultureInfo.InvariantCulture);
            await buffer.EnsureAsync(socket, n);
            body.Append(buffer.Take(n));
        }
        else if (headers.GetValueOrDefault("transfer-encoding") == "chunked")
        {
            while (true)
            {
                int lineEnd;
                while ((lineEnd = buffer.IndexOf("\r\n")) < 0)
                {
                    await buffer.EnsureAsync(socket, buffer.Length + 1);
                }

                int size = Convert.ToInt32(buffer.Take(lineEnd + 2).Split(';')[0].Trim(), 16);
                await buffer.EnsureAsync(socket, size + 2);
                body.Append(buffer.Take(size + 2)[..size]);
                if (size == 0)
                {
                    break;
                }
            }
        }
        else
        {
            while (await buffer.FillAsync(socket))
            {
            }

            body.Append(buffer.Take(buffer.Length));
            close = true;
        }

        return new Response(status, body.ToString(), close);
    }

    private sealed record Response(int Status, string Body, bool Close);

    private sealed class ClosedException(bool beforeResponse, string message) : Exception(message)
    {
        public bool BeforeResponse { get; } = beforeResponse;
    }

    /// <summary>Bytes received and not yet consumed.</summary>
    private sealed class Buffer
    {
        private readonly List<byte> _bytes = new();
        private readonly byte[] _chunk = new byte[16384];

        public int Length => _bytes.Count;

        public int IndexOf(string text) => Encoding.ASCII.GetString(_bytes.ToArray()).IndexOf(text, StringComparison.Ordinal);

        public string Take(int count)
        {
            string text = Encoding.ASCII.GetString(_bytes.GetRange(0, count).ToArray());
            _bytes.RemoveRange(0, count);
            return text;
        }

        /// <summary>Reads once more; false when the peer closed.</summary>
        public async Task<bool> FillAsync(Socket socket)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            int n;
            try
            {
                n = await socket.ReceiveAsync(_chunk, SocketFlags.None, timeout.Token);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
                // A reset is a close too: whether any byte of a response came decides what it means.
                return false;
            }

            _bytes.AddRange(_chunk.AsSpan(0, n).ToArray());
            return n > 0;
        }

        public async Task EnsureAsync(Socket socket, int count)
        {
            while (_bytes.Count < count)
            {
                if (!await FillAsync(socket))
                {
                    throw new ClosedException(false, "closed in the body");
                }
            }
        }
    }
}
