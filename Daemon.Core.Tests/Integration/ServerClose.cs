namespace Daemon.Core.Tests.Integration;

/// <summary>
/// How a server ended a loopback TCP connection, seen in /proc/net/tcp once it has closed its
/// descriptor: with a FIN, its side stays as an orphan (no inode) in FIN_WAIT2 while the client
/// has not closed; with a reset (SO_LINGER 0, or unread bytes), its side is gone at once.
/// </summary>
internal static class ServerClose
{
    public enum Ending
    {
        /// <summary>Closed with a FIN: its side waits in FIN_WAIT2 for the client's.</summary>
        Fin,

        /// <summary>Reset: its side is gone while the client's is still open.</summary>
        Reset,

        /// <summary>The server still holds its descriptor when the wait ran out.</summary>
        StillOpen,
    }

    /// <summary>
    /// Waits until the server side of <paramref name="client"/>'s connection (to a server on
    /// 127.0.0.1) has no descriptor left, and says how it ended. The client must keep its socket
    /// open meanwhile.
    /// </summary>
    public static Ending WaitForClose(Socket client, TimeSpan timeout)
    {
        var server = (IPEndPoint)client.RemoteEndPoint!;
        var local = (IPEndPoint)client.LocalEndPoint!;
        Ending ending = Ending.StillOpen;
        ExampleDaemon.Eventually(
            () =>
            {
                // The server's side: local address the server's, remote address the client's.
                (int State, long Inode)? side = Find(server, local);
                if (side is null)
                {
                    ending = Ending.Reset;
                    return true;
                }

                if (side.Value.Inode == 0)
                {
                    ending = side.Value.State is 4 or 5 ? Ending.Fin : Ending.Reset;
                    return true;
                }

                return false;
            },
            timeout,
            pollMilliseconds: 10);
        return ending;
    }

    /// <summary>The state (TCP_* number) and inode of the IPv4 socket with these two ends, if any.</summary>
    private static (int State, long Inode)? Find(IPEndPoint localEnd, IPEndPoint remoteEnd)
    {
        string local = Hex(localEnd);
        string remote = Hex(remoteEnd);
        foreach (string line in File.ReadLines("/proc/net/tcp").Skip(1))
        {
            string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length > 9 && f[1] == local && f[2] == remote)
            {
                return (int.Parse(f[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture), long.Parse(f[9], CultureInfo.InvariantCulture));
            }
        }

        return null;
    }

    /// <summary>An address as /proc/net/tcp writes it: the IPv4 address as a host-order word, then the port.</summary>
    private static string Hex(IPEndPoint end)
    {
        byte[] a = end.Address.GetAddressBytes();
        uint word = BitConverter.ToUInt32(a, 0);
        return string.Create(CultureInfo.InvariantCulture, $"{word:X8}:{end.Port:X4}");
    }
}
