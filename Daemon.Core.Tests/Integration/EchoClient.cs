namespace Daemon.Core.Tests.Integration;

/// <summary>One connection to an echo server on 127.0.0.1, kept open across whatever the test does to the server.</summary>
public sealed class EchoClient : IDisposable
{
    private readonly TcpClient _client = new();

    /// <summary>Connects to <paramref name="port"/>; a refused connection throws <see cref="SocketException"/>.</summary>
    public EchoClient(int port)
    {
        try
        {
            _client.Connect(IPAddress.Loopback, port);
            Stream = _client.GetStream();
        }
        catch
        {
            _client.Dispose();
            throw;
        }
    }

    public NetworkStream Stream { get; }

    /// <summary>The socket, to poll it or to read it to its end.</summary>
    public Socket Socket => _client.Client;

    /// <summary>Sends <paramref name="text"/> and a newline; the echo, without the newline.</summary>
    public string Echo(string text, int timeoutMilliseconds = 30_000) => Lines.EchoOn(Stream, text, timeoutMilliseconds);

    public void Dispose()
    {
        Stream.Dispose();
        _client.Dispose();
    }
}
