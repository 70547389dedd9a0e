using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net.Sockets;
using System.Text;
using Daemon.Handover;
using Daemon.Logging;

namespace Daemon.Systemd;

/// <summary>
/// systemd's file descriptor store (sd_notify(3) FDSTORE=1, systemd.service(5)
/// FileDescriptorStoreMax=): once ready, <c>run</c> gives systemd a copy of each listener it
/// bound, under its name. systemd passes them back to the next start of the unit (LISTEN_FDS,
/// LISTEN_FDNAMES) as it does a socket unit's, so during <c>systemctl restart</c> the kernel queues
/// the connections that arrive, and none is refused. The store lasts until the unit stops for good.
/// </summary>
/// <remarks>
/// Names go to systemd as <see cref="Prefix"/> + the listener's name, made valid (no ':', printable
/// ASCII, 255 bytes at most): a listener passed back with that prefix is the store's, which counts
/// only where the configuration asks to listen (as a handed-over one), while a socket unit's counts
/// by name wherever it is. One passed back that nothing claims is closed and removed from the store
/// (FDSTOREREMOVE=1). A unit without FileDescriptorStoreMax= keeps nothing; systemd 254 and later
/// tell the maximum in $FDSTORE (none is sent when it is 0), earlier ones tell nothing, and systemd
/// then logs "Cannot store more fds than FileDescriptorStoreMax=0" at each start.
/// </remarks>
internal static class FileDescriptorStore
{
    /// <summary>What the names of the descriptors this daemon stores begin with.</summary>
    public const string Prefix = "stored.";

    /// <summary>The longest name systemd takes (FDNAME_MAX).</summary>
    private const int LongestName = 255;

    private const string CapacityVariable = "FDSTORE";

    /// <summary>
    /// Puts this generation's listeners that systemd has no copy of into its store, and removes from
    /// it those it passed back and nothing claimed; says so in one line. Nothing without NOTIFY_SOCKET.
    /// </summary>
    public static void Keep(ListenerSet listeners, SystemdNotifier notifier, DaemonLog log) =>
        Keep(listeners, notifier, log, Environment.GetEnvironmentVariable(CapacityVariable));

    /// <summary>For testing: <see cref="Keep(ListenerSet, SystemdNotifier, DaemonLog)"/> with the $FDSTORE the environment would give.</summary>
    internal static void Keep(ListenerSet listeners, SystemdNotifier notifier, DaemonLog log, string? capacityVariable)
    {
        if (!notifier.IsOpen)
        {
            return;
        }

        IReadOnlyList<string> adopted = listeners.Adopted;
        foreach (string name in listeners.UnclaimedStored.Distinct().Where(n => !adopted.Contains(n)))
        {
            // A name claimed too (two listeners whose names became the same) must stay.
            _ = notifier.RemoveStored(FdName(name));
        }

        listeners.RemoveUnclaimedSocketFiles();
        int? capacity = Capacity(capacityVariable);
        IReadOnlyList<(string Name, Socket Socket)> toStore = listeners.NotKeptBySystemd;
        if (toStore.Count == 0 || capacity == 0)
        {
            return;
        }

        var stored = new List<string>();
        foreach ((string name, Socket socket) in toStore)
        {
            if (Store(notifier, name, socket))
            {
                listeners.MarkStored(socket);
                stored.Add(name);
            }
        }

        if (stored.Count == 0)
        {
            // Not delivered: the notifier said why.
            return;
        }

        string names = string.Join(", ", stored.Select(n => $"'{n}'"));
        if (capacity is not int most)
        {
            log.Line($"fd store: systemd keeps listener(s) {names} across a restart if the unit sets FileDescriptorStoreMax= (at least {stored.Count + listeners.FromStoreCount})");
        }
        else if (stored.Count + listeners.FromStoreCount > most)
        {
            log.Line(LogSeverity.Warning, $"fd store: FileDescriptorStoreMax={most} is less than the {stored.Count + listeners.FromStoreCount} listeners; systemd closes those beyond it, and a restart refuses their connections");
        }
        else
        {
            log.Line($"fd store: systemd keeps listener(s) {names} across a restart (FileDescriptorStoreMax={most})");
        }
    }

    /// <summary>The listener's name in a LISTEN_FDNAMES entry that this daemon stored, or null for any other entry.</summary>
    public static string? ListenerName(string fdName) =>
        fdName.StartsWith(Prefix, StringComparison.Ordinal) && fdName.Length > Prefix.Length ? fdName[Prefix.Length..] : null;

    /// <summary>The FDNAME under which a listener is stored: <see cref="Prefix"/> and its name, made one systemd takes.</summary>
    internal static string FdName(string listenerName)
    {
        var name = new StringBuilder(Prefix);
        foreach (char c in listenerName)
        {
            if (name.Length == LongestName)
            {
                break;
            }

            // fdname_is_valid: printable ASCII without ':', LISTEN_FDNAMES's separator.
            name.Append(c is >= ' ' and < '\x7f' and not ':' ? c : '_');
        }

        return name.ToString();
    }

    /// <summary>The store's size as $FDSTORE tells it (systemd 254 and later), or null when it does not.</summary>
    internal static int? Capacity(string? variable) =>
        int.TryParse(variable, NumberStyles.None, CultureInfo.InvariantCulture, out int most) ? most : null;

    private static bool Store(SystemdNotifier notifier, string name, Socket socket)
    {
        try
        {
            return notifier.Store(FdName(name), (int)socket.Handle);
        }
        catch (ObjectDisposedException)
        {
            // The startup hook closed it already: nothing to keep.
            return false;
        }
    }
}
