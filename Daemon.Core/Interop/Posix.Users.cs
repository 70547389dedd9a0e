using System;
using System.Runtime.InteropServices;
using Mono.Unix.Native;

namespace Daemon.Interop;

/// <summary>
/// Looking up users and groups, and taking on their identity. The databases (NSS) and setgroups go
/// through Mono.Posix, the one use left of it: its native helper is loaded by the first of these
/// calls, not before (<see cref="NativeLibraries.EnsureHelper"/>). Each of them throws
/// <see cref="DaemonException"/> with the one-line reason when the helper cannot be loaded.
/// </summary>
internal static partial class Posix
{
    /// <summary>getpwnam(3): the user called <paramref name="name"/>, or null.</summary>
    public static Passwd? GetUserByName(string name) => WithHelper(() => Syscall.getpwnam(name));

    /// <summary>getpwuid(3): the user of <paramref name="uid"/>, or null.</summary>
    public static Passwd? GetUserById(uint uid) => WithHelper(() => Syscall.getpwuid(uid));

    /// <summary>
    /// The home directory of <paramref name="uid"/> (getpwuid(3)), or null: a method of its own, so
    /// that its caller's code does not name Mono.Posix's types (a JIT build then loads its assembly).
    /// </summary>
    public static string? GetHomeDirectory(uint uid) => GetUserById(uid)?.pw_dir;

    /// <summary>getgrnam(3): the group called <paramref name="name"/>, or null.</summary>
    public static Group? GetGroupByName(string name) => WithHelper(() => Syscall.getgrnam(name));

    /// <summary>getgrgid(3): the group of <paramref name="gid"/>, or null.</summary>
    public static Group? GetGroupById(uint gid) => WithHelper(() => Syscall.getgrgid(gid));

    /// <summary>getgrouplist(3): the groups <paramref name="user"/> belongs to.</summary>
    public static uint[] GetGroupList(string user) =>
        Array.ConvertAll(WithHelper(() => Syscall.getgrouplist(user)), g => g.gr_gid);

    /// <summary>setgroups(2): this process's supplementary groups.</summary>
    public static int SetGroups(uint[] groups, out int errno)
    {
        RequireHelper();
        return WithErrno(Syscall.setgroups(groups), out errno);
    }

    public static int SetGid(uint gid, out int errno) =>
        WithErrno(Libc.setresgid(gid, gid, gid), out errno);

    public static int SetUid(uint uid, out int errno) =>
        WithErrno(Libc.setresuid(uid, uid, uid), out errno);

    private static T WithHelper<T>(Func<T> call)
    {
        RequireHelper();
        return call();
    }

    // The helper is loaded here, before the call, never by a resolver in the middle of it (see NativeLibraries).
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
