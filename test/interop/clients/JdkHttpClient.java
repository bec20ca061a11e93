// The JDK's own HTTP client (java.net.http, Java 11+) with its defaults: on an http:// URL it
// offers "Upgrade: h2c" with its first request. Run as `java JdkHttpClient.java <base URL>
// <token>`; prints one line per request: "<name> <status> <body>".
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

public class JdkHttpClient {
  public static void main(String[] args) throws Exception {
    String base = args[0];
    String token = args[1];
    HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(20)).build();
    HttpRequest[] requests = {
      HttpRequest.newBuilder(URI.create(base + "/healthz")).timeout(Duration.ofSeconds(30)).build(),
      HttpRequest.newBuilder(URI.create(base + "/v1.0/talks")).timeout(Duration.ofSeconds(30))
          .header("Authorization", "Bearer " + token).build(),
      HttpRequest.newBuilder(URI.create(base + "/talk.v1.TalkService/ListTalks")).timeout(Duration.ofSeconds(30))
          .header("Authorization", "Bearer " + token).header("Content-Type", "application/json")
          .POST(HttpRequest.BodyPublishers.ofString("{\"page_size\": 5}")).build(),
    };
    String[] names = {"healthz", "rest", "connect"};
    for (int i = 0; i < requests.length; i++) {
      HttpResponse<String> response = client.send(requests[i], HttpResponse.BodyHandlers.ofString());
      System.out.println(names[i] + " " + response.statusCode() + " " + response.version() + " " + response.body().replace('\n', ' '));
    }
  }
}
