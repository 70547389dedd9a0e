using System.Runtime.InteropServices;
using Mono.Unix.Native;

namespace Daemon.Interop;

/// <summary>
/// Looking up users and groups, and taking on their identity. The databases (NSS) and setgroups go
/// through Mono.Posix, the one use left of it: its native helper is loaded by the first of these
/// calls, not before (<see cref="NativeLibraries.EnsureHelper"/>).
/// </summary>
internal static partial class Posix
{
    /// <summary>getpwnam(3): the user called <paramref name="name"/>, or null.</summary>
    /// <exception cref="DaemonException">Mono.Posix's native helper cannot be loaded.</exception>
    public static Passwd? GetUserByName(string name)
    {
        RequireHelper();
        return Syscall.getpwnam(name);
    }

    /// <summary>getpwuid(3): the user of <paramref name="uid"/>, or null.</summary>
    /// <exception cref="DaemonException">Mono.Posix's native helper cannot be loaded.</exception>
    public static Passwd? GetUserById(uint uid)
    {
        RequireHelper();
        return Syscall.getpwuid(uid);
    }

    /// <summary>getgrnam(3): the group called <paramref name="name"/>, or null.</summary>
    /// <exception cref="DaemonException">Mono.Posix's native helper cannot be loaded.</exception>
    public static Group? GetGroupByName(string name)
    {
        RequireHelper();
        return Syscall.getgrnam(name);
    }

    /// <summary>getgrgid(3): the group of <paramref name="gid"/>, or null.</summary>
    /// <exception cref="DaemonException">Mono.Posix's native helper cannot be loaded.</exception>
    public static Group? GetGroupById(uint gid)
    {
        RequireHelper();
        return Syscall.getgrgid(gid);
    }

    /// <summary>getgrouplist(3): the groups <paramref name="user"/> belongs to.</summary>
    /// <exception cref="DaemonException">Mono.Posix's native helper cannot be loaded.</exception>
    public static uint[] GetGroupList(string user)
    {
        RequireHelper();
        Group[] groups = Syscall.getgrouplist(user);
        var ids = new uint[groups.Length];
        for (int i = 0; i < groups.Length; i++)
        {
            ids[i] = groups[i].gr_gid;
        }

        return ids;
    }

    /// <summary>setgroups(2): this process's supplementary groups.</summary>
    /// <exception cref="DaemonException">Mono.Posix's native helper cannot be loaded.</exception>
    public static int SetGroups(uint[] groups, out int errno)
    {
        RequireHelper();
        return WithErrno(Syscall.setgroups(groups), out errno);
    }

    public static int SetGid(uint gid, out int errno) =>
        WithErrno(Libc.setresgid(gid, gid, gid), out errno);

    public static int SetUid(uint uid, out int errno) =>
        WithErrno(Libc.setresuid(uid, uid, uid), out errno);

    // Loaded here, before the call, never from a resolver in the middle of it (see NativeLibraries).
    private static void RequireHelper()
    {
        if (NativeLibraries.EnsureHelper() is { } problem)
        {
            throw new DaemonException(problem);
        }
    }

    private static partial class Libc
    {
        [LibraryImport("libc", SetLastError = true)]
        internal static partial int setresgid(uint real, uint effective, uint saved);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int setresuid(uint real, uint effective, uint saved);
    }
}
