using Daemon.Interop;

namespace Daemon.Security;

/// <summary>
/// The identity a daemon drops to: resolved from the user and group databases before anything
/// starts, so an unknown name fails at once, and applied after the startup hook.
/// </summary>
internal sealed record Identity(string User, uint Uid, uint Gid, uint[] Groups)
{
    /// <summary>
    /// Resolves <paramref name="user"/> and <paramref name="group"/>; null when neither is given or
    /// when they name the caller already.
    /// </summary>
    /// <exception cref="DaemonException">An unknown name, or a change that needs root.</exception>
    public static Identity? Resolve(string? user, string? group) =>
        user is null && group is null ? null : ResolveNamed(user, group);

    // Apart, so that a JIT build compiles Mono.Posix's types (and loads its assembly) only for --user/--group.
    private static Identity? ResolveNamed(string? user, string? group)
    {
        uint euid = Posix.GetEffectiveUid();
        Mono.Unix.Native.Passwd account = user is null
            ? Posix.GetUserById(euid) ?? throw new DaemonException($"cannot find the user of uid {euid}")
            : FindUser(user);
        uint gid = account.pw_gid;
        if (group is not null)
        {
            gid = FindGroup(group).gr_gid;
        }

        if (euid != 0)
        {
            if (account.pw_uid != euid || (group is not null && gid != account.pw_gid))
            {
                throw new DaemonException($"only root can run the daemon as another user or group (you are uid {euid})");
            }

            return null;
        }

        uint[] groups = Posix.GetGroupList(account.pw_name);
        return new Identity(account.pw_name, account.pw_uid, gid, groups);
    }

    /// <summary>A user by name, or by number as setpriv and start-stop-daemon accept it ("65534").</summary>
    private static Mono.Unix.Native.Passwd FindUser(string user) =>
        Posix.GetUserByName(user)
        ?? (TryParseId(user, out uint uid) ? Posix.GetUserById(uid) : null)
        ?? throw new DaemonException($"unknown user '{Files.PathText.Printable(user)}'");

    /// <summary>A group by name, or by number ("65534").</summary>
    private static Mono.Unix.Native.Group FindGroup(string group) =>
        Posix.GetGroupByName(group)
        ?? (TryParseId(group, out uint gid) ? Posix.GetGroupById(gid) : null)
        ?? throw new DaemonException($"unknown group '{Files.PathText.Printable(group)}'");

    private static bool TryParseId(string text, out uint id) =>
        uint.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out id) && id != uint.MaxValue;

    /// <summary>
    /// Drops to this identity for good: supplementary groups, then the group, then the user (real,
    /// effective and saved), and proves that root cannot be regained.
    /// </summary>
    /// <exception cref="DaemonException">A step failed; the daemon must not go on as root.</exception>
    public void Apply()
    {
        if (Posix.SetGroups(Groups, out int errno) < 0)
        {
            throw DaemonException.FromErrno($"cannot set the supplementary groups of {User}", errno);
        }

        if (Posix.SetGid(Gid, out errno) < 0)
        {
            throw DaemonException.FromErrno($"cannot change to group {Gid}", errno);
        }

        if (Posix.SetUid(Uid, out errno) < 0)
        {
            throw DaemonException.FromErrno($"cannot change to user {User}", errno);
        }

        if (Uid != 0 && Posix.SetUid(0, out _) == 0)
        {
            throw new DaemonException($"dropping to user {User} did not hold: root could be regained");
        }
    }
}
