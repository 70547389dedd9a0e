using Mono.Unix.Native;

namespace Daemon.Interop;

/// <summary>Looking up users and groups, and taking on their identity.</summary>
internal static partial class Posix
{
    public static Passwd? GetUserByName(string name) => Syscall.getpwnam(name);

    public static Passwd? GetUserById(uint uid) => Syscall.getpwuid(uid);

    public static Group? GetGroupByName(string name) => Syscall.getgrnam(name);

    public static Group? GetGroupById(uint gid) => Syscall.getgrgid(gid);

    public static uint[] GetGroupList(string user)
    {
        Group[] groups = Syscall.getgrouplist(user);
        var ids = new uint[groups.Length];
        for (int i = 0; i < groups.Length; i++)
        {
            ids[i] = groups[i].gr_gid;
        }

        return ids;
    }

    public static int SetGroups(uint[] groups, out int errno) =>
        WithErrno(Syscall.setgroups(groups), out errno);

    public static int SetGid(uint gid, out int errno) =>
        WithErrno(Syscall.setresgid(gid, gid, gid), out errno);

    public static int SetUid(uint uid, out int errno) =>
        WithErrno(Syscall.setresuid(uid, uid, uid), out errno);
}
