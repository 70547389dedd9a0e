namespace Daemon.Core.Tests.Integration;

/// <summary>Line-at-a-time talk with the echo servers under test, in ASCII.</summary>
public static class Lines
{
    /// <summary>What the peer sends up to a newline (all of the last read, so possibly more), or until it closes.</summary>
    public static string ReadLine(Socket socket) => ReadLine(buffer => socket.Receive(buffer));

    /// <inheritdoc cref="ReadLine(Socket)"/>
    public static string ReadLine(Stream stream) => ReadLine(buffer => stream.Read(buffer));

    /// <summary>Sends <paramref name="text"/> and a newline on an open connection; what comes back up to the newline, without it.</summary>
    public static string EchoOn(NetworkStream stream, string text, int timeoutMilliseconds = 10_000)
    {
        stream.ReadTimeout = timeoutMilliseconds;
        stream.Write(Encoding.ASCII.GetBytes(text + "\n"));
        return ReadLine(stream).TrimEnd('\n');
    }

    /// <summary>Sends <paramref name="text"/> and a newline on a connected socket; what comes back up to the newline, without it.</summary>
    public static string EchoOn(Socket socket, string text)
    {
        socket.Send(Encoding.ASCII.GetBytes(text + "\n"));
        return ReadLine(socket).TrimEnd('\n');
    }

    private static string ReadLine(Func<byte[], int> read)
    {
        var received = new List<byte>();
        var buffer = new byte[256];
        while (!received.Contains((byte)'\n'))
        {
            int n = read(buffer);
            if (n == 0)
            {
                break;
            }

            received.AddRange(buffer[..n]);
        }

        return Encoding.ASCII.GetString(received.ToArray());
    }
}
