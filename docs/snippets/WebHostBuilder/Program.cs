using Daemon.Hosting.Web;

return new WebDaemon(args => Host.CreateDefaultBuilder(args)
    .ConfigureWebHostDefaults(web => web.Configure(app =>
        app.Run(context => context.Response.WriteAsync("Hello World!"))))).Main(args);
