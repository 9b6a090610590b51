# A slider and an output computed from it on the server: moving the slider sends its value over
# Shiny's WebSocket and the server answers with the new text.
library(shiny)

ui <- fluidPage(
  titlePanel("berth: Shiny behind the proxy"),
  sliderInput("n", "Number", min = 1, max = 100, value = 10),
  textOutput("square")
)

server <- function(input, output, session) {
  output$square <- renderText(sprintf("%d squared is %d", input$n, input$n * input$n))
}

shinyApp(ui, server)
