namespace Daemon.Core.Tests.Integration;

/// <summary>
/// Clients connected to a local port one after the other, and left open: the kernel completes each
/// connect into the listener's queue, accepted or not. Dispose closes them all (again is harmless).
/// </summary>
public sealed class ClientSockets : IDisposable
{
    private readonly List<Socket> _sockets = new();

    /// <summary>Connects <paramref name="count"/> clients to 127.0.0.1:<paramref name="port"/>; 0 for no receive timeout.</summary>
    public ClientSockets(int port, int count, int receiveTimeoutMilliseconds = 0)
    {
        try
        {
            for (int i = 0; i < count; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = receiveTimeoutMilliseconds };
                _sockets.Add(client);
                client.Connect(IPAddress.Loopback, port);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int Count => _sockets.Count;

    public Socket this[int index] => _sockets[index];

    public void Dispose()
    {
        _sockets.ForEach(s => s.Dispose());
        _sockets.Clear();
    }
}
